"""Which library files a rule depends on, computed from the imports of its script.

Why: a hand-written list of the modules a rule uses drifts (an edit to the Holm correction
that does not re-run the verdict is a silent stale result). Here the list is derived: the
rule's `script:` file and every module of `polychromic` it imports, transitively, with the
packages' `__init__.py` files. Modules a rule runs without importing them are named by the rule
(`extra`): a module started by name (`python -m polychromic.training.launch`), or a registry
that names its implementations as "polychromic.module:Class" strings and imports them only when
used (`polychromic.objectives` for train, `polychromic.sampling` for generate and train): the
implementations it lists count too. The workflow gives these files to each rule as inputs, so
editing any of them re-runs the rule and everything downstream.

Standard library only (`ast`, no import of the modules): the workflow calls it at DAG time.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

PACKAGE = "polychromic"
_TARGET = re.compile(rf"^({PACKAGE}(?:\.\w+)+):\w+$")


def module_file(name: str, src: Path) -> Path | None:
    """The source file of module `name` under `src` (a package's __init__.py), if any."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, src: Path, targets: bool = False) -> set[str]:
    """The `polychromic` modules that the file at `path` imports anywhere (function-level
    imports included) and, with `targets`, names as registry targets ("polychromic.x:Name")."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from polychromic.evaluation import coverage` imports a module too
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif targets and isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _TARGET.match(node.value)
            if match:
                found.add(match[1])
    return {name for name in found if (name == PACKAGE or name.startswith(PACKAGE + "."))
            and module_file(name, src) is not None}


def with_parents(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing a module runs its packages' __init__."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@functools.cache
def script_dependencies(script: str, src: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Sorted paths of every library file the script `script` runs, the modules `extra` and
    the implementations they name included (see module docstring)."""
    source = Path(src)
    pending = [name for found in imported_modules(Path(script), source)
               for name in with_parents(found)] + list(extra)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, source)
        if path is not None:
            found = imported_modules(path, source, targets=name in extra)
            pending += [parent for module in found for parent in with_parents(module)
                        if parent not in seen]
    return tuple(sorted(str(module_file(name, source)) for name in seen
                        if module_file(name, source) is not None))
