"""Name -> class registries, so adding a model or an optimizer is one entry.

Entries are "module:attribute" strings resolved on first use, which keeps ``import otgap`` cheap
and lets a registry list entries whose modules import heavy optional packages.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any


class Registry(Mapping[str, Any]):
    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._cache: dict[str, Any] = {}

    def register(self, name: str, target: str | Any) -> None:
        """Add an entry: a "module:attribute" string or the object itself."""
        if name in self._entries or name in self._cache:
            raise KeyError(f"{self.kind} '{name}' is already registered")
        if isinstance(target, str):
            self._entries[name] = target
        else:
            self._entries[name] = f"{target.__module__}:{target.__qualname__}"
            self._cache[name] = target

    def __getitem__(self, name: str) -> Any:
        if name not in self._entries:
            known = ", ".join(sorted(self._entries))
            raise KeyError(f"unknown {self.kind} '{name}'; known: {known}")
        if name not in self._cache:
            module, attr = self._entries[name].split(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._cache[name] = obj
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
