"""The named registry every room uses: registration, misses with close matches, listing by glob pattern."""

from __future__ import annotations

import pytest

import diswot.spaces
from diswot.registry import Registry, UnknownNameError, match_names


def _colours() -> Registry[int]:
    reg: Registry[int] = Registry("colour")
    reg.register("red", 1)

    @reg.register("Green-Light")
    def green() -> int:  # a decorator returns what it registers
        return 2

    reg.register("blue", 3)
    return reg


def test_register_get_and_order() -> None:
    reg = _colours()
    assert reg.names() == ["red", "Green-Light", "blue"]
    assert list(reg) == reg.names() and len(reg) == 3
    assert "red" in reg and "green" not in reg
    assert reg.get("red") == 1 and reg.get("blue") == 3
    assert reg.kind == "colour"


def test_a_name_is_registered_once() -> None:
    reg = _colours()
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        reg.register("red", 4)
    assert reg.get("red") == 1


def test_a_miss_lists_the_names_and_close_matches() -> None:
    with pytest.raises(UnknownNameError) as exc:
        _colours().get("rde")
    assert isinstance(exc.value, KeyError)
    assert str(exc.value) == "unknown colour 'rde'; valid: red, Green-Light, blue. Did you mean red?"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ["red", "Green-Light", "blue"]),
        ("*", ["red", "Green-Light", "blue"]),
        ("green*", ["Green-Light"]),  # any case
        ("*E*", ["red", "Green-Light", "blue"]),
        ("?ed", ["red"]),
        ("[rb]*", ["red", "blue"]),
        ("re", []),  # a glob matches the whole name
        ("yellow*", []),
    ],
)
def test_names_by_pattern(pattern: str | None, expected: list[str]) -> None:
    assert _colours().names(pattern) == expected


def test_match_names_keeps_the_order() -> None:
    assert match_names(["resnet56", "wrn-40-2", "ResNet18"], "resnet*") == ["resnet56", "ResNet18"]
    assert match_names(iter(["a", "b"]), None) == ["a", "b"]


def test_spaces_re_export_the_registry() -> None:
    assert diswot.spaces.Registry is Registry
    assert diswot.spaces.UnknownNameError is UnknownNameError
