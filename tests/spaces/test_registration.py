"""Each space registers itself where it is defined (``@register_space``); listing the spaces by pattern."""

from __future__ import annotations

import importlib
import inspect

import pytest

from diswot.registry import Registry
from diswot.spaces import SPACES, Space, UnknownNameError, get_space, list_spaces, register_space

from .test_contract import SPACE_NAMES


def test_spaces_is_a_registry_of_space_classes() -> None:
    assert isinstance(SPACES, Registry) and SPACES.kind == "space"
    for name in SPACES.names():
        cls = SPACES.get(name)
        assert issubclass(cls, Space) and cls.name == name
        assert isinstance(get_space(name), cls)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_each_space_is_registered_on_its_class(name: str) -> None:
    """The decorator sits on the class in the space's own module; the package only imports modules."""
    cls = SPACES.get(name)
    assert cls.__module__.startswith("diswot.spaces._")
    source = inspect.getsource(importlib.import_module(cls.__module__))
    assert f"@register_space\nclass {cls.__name__}(" in source


def test_the_package_registers_nothing_itself() -> None:
    source = inspect.getsource(importlib.import_module("diswot.spaces"))
    assert ".register(" not in source and "@register_space" not in source


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, SPACE_NAMES),
        ("s2-*", ["s2-cifar", "s2-imagenet"]),
        ("S2-*", ["s2-cifar", "s2-imagenet"]),
        ("*-ti", ["autoformer-ti", "pit-ti"]),
        ("nb???", ["nb201"]),
        ("resnet*", []),
    ],
)
def test_list_spaces(pattern: str | None, expected: list[str]) -> None:
    assert list_spaces(pattern) == expected


def test_a_space_without_a_name_is_refused() -> None:
    class Nameless(SPACES.get("s0")):  # type: ignore[misc]
        name = ""

    with pytest.raises(ValueError, match="Nameless has no name"):
        register_space(Nameless)
    with pytest.raises(ValueError, match="already registered"):
        register_space(SPACES.get("s0"))
    assert list_spaces() == SPACE_NAMES


def test_unknown_space_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean pit-ti"):
        get_space("pit-t")
