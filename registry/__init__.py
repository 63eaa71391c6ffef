"""Named registries: a name per item, no duplicates, close matches on a miss, listing by glob pattern.

Each room keeps its own :class:`Registry` (spaces, proxies, teachers) and registers an item where
it is defined, with a decorator. This module imports no other part of diswot.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterable, Iterator, TypeVar, overload

__all__ = ["Registry", "UnknownNameError", "match_names"]

T = TypeVar("T")


def match_names(names: Iterable[str], pattern: str | None) -> list[str]:
    """The ``names`` that match the glob ``pattern`` (``fnmatch``, case-insensitive), in order; all when ``None``."""
    if pattern is None:
        return list(names)
    folded = pattern.casefold()
    return [name for name in names if fnmatch.fnmatchcase(name.casefold(), folded)]


class UnknownNameError(KeyError):
    """A name that is not registered; ``str()`` lists the valid names and close matches."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        self.message = f"unknown {kind} {name!r}; valid: {', '.join(known)}.{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Registry(Generic[T]):
    """Map names to items; ``register`` refuses duplicates, ``get`` lists the names on a miss."""

    def __init__(self, kind: str) -> None:
        #: what the items are, for messages: ``"space"``, ``"proxy"``, ``"teacher"``
        self.kind = kind
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, item: T) -> T: ...

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register ``item`` under ``name`` (usable as a decorator when ``item`` is omitted)."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add if item is None else add(item)

    def get(self, name: str) -> T:
        """The item registered as ``name``; raises :class:`UnknownNameError` otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names in registration order; with ``pattern``, those matching that glob
        (``fnmatch``, case-insensitive: ``"resnet*"``, ``"diswot-?lo*"``)."""
        return match_names(self._items, pattern)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
