"""A named registry of extensions, and the loader of "module:Class" targets.

The objectives (`polychromic.objectives`), the sampling engines (`polychromic.sampling`) and the
metrics (`polychromic.evaluation.registry`) are each a `Registry`: a mapping from the name used
in config and files to an entry, filled by `register(...)` calls. An implementation that needs
heavy imports is named as a "module:Class" string and loaded only when used (`load`), so the
workflow can read a registry at DAG time without importing torch. Standard library only.
"""

from __future__ import annotations

import importlib
from typing import Any


class Registry(dict):
    """Entries by name; `kind` names what they are in error messages."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str, entry: Any) -> None:
        """Add `entry` under `name`; a name is registered once."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = entry

    def unregister(self, name: str) -> None:
        """Remove `name` (tests register toy entries and remove them again)."""
        self.pop(name, None)

    def entry(self, name: str | None) -> Any:
        """The entry of `name`; ValueError listing the registered names otherwise."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self)}")
        return self[name]


def load(target: str) -> Any:
    """The attribute named by "package.module:Attribute" (its module imported now)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
