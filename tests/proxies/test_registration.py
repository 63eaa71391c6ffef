"""Each proxy registers itself where it is defined (``@register_proxy``), cites its formula, declares the
options a search resolves for it, and is listed by pattern."""

from __future__ import annotations

import importlib
import inspect

import pytest

from diswot.proxies import PROXIES, SEMANTIC_MODES, Proxy, list_proxies, make_proxy
from diswot.registry import Registry

#: the options a search resolves once per study and offers to every proxy (``make_proxy``)
SEARCH_OPTIONS = {"semantic": "class"}


def test_proxies_is_a_registry_of_proxy_classes() -> None:
    assert isinstance(PROXIES, Registry) and PROXIES.kind == "proxy"
    assert len(PROXIES) == len(list_proxies()) > 20


@pytest.mark.parametrize("name", PROXIES.names())
def test_each_proxy_is_registered_on_its_class(name: str) -> None:
    cls = PROXIES.get(name)
    assert issubclass(cls, Proxy) and cls.name == name
    assert cls.__module__.startswith("diswot.proxies._")
    source = inspect.getsource(importlib.import_module(cls.__module__))
    assert f"@register_proxy\nclass {cls.__name__}(" in source


@pytest.mark.parametrize("name", PROXIES.names())
def test_each_proxy_cites_its_formula(name: str) -> None:
    cls = PROXIES.get(name)
    assert isinstance(cls.citation, str) and cls.citation.strip(), name
    assert not hasattr(cls, "reference"), "the citation is Proxy.citation; a reference is a Reference sample"


@pytest.mark.parametrize("name", PROXIES.names())
def test_declared_options_are_constructor_keywords(name: str) -> None:
    """Every option a proxy declares is a keyword of its constructor, and ``make_proxy`` passes exactly
    those: the search offers the same resolved options to every proxy and names none."""
    cls = PROXIES.get(name)
    params = inspect.signature(cls.__init__).parameters
    for option in cls.options:
        assert option in params and params[option].kind is inspect.Parameter.KEYWORD_ONLY, (name, option)
    proxy = make_proxy(name, {**SEARCH_OPTIONS, "not-an-option": 1})
    assert isinstance(proxy, cls)
    for option in cls.options:
        assert getattr(proxy, option) == SEARCH_OPTIONS[option]


def test_the_search_options_are_what_the_proxies_declare() -> None:
    """No proxy declares an option the search does not resolve (it would never be set)."""
    declared = {option for name in PROXIES.names() for option in PROXIES.get(name).options}
    assert declared == set(SEARCH_OPTIONS)
    assert SEARCH_OPTIONS["semantic"] in SEMANTIC_MODES
    assert all("semantic" in PROXIES.get(n).options for n in list_proxies("diswot*"))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("diswot-*plus", ["diswot-plus", "diswot-relation-plus"]),
        ("DISWOT-B*", ["diswot-balance"]),
        ("n?t", ["nst"]),
        ("grad_*", ["grad_norm"]),
        ("resnet*", []),
    ],
)
def test_list_proxies(pattern: str, expected: list[str]) -> None:
    assert list_proxies(pattern) == expected


def test_list_proxies_without_a_pattern_is_every_name_in_order() -> None:
    names = list_proxies()
    assert names == PROXIES.names() and names[0] == "diswot"
