"""Which library files a workflow script depends on, found from its import statements.

Snakemake's code trigger notices edits to a rule's script but not to the modules the script
imports. The workflow therefore declares, as inputs of each rule, the ``src/otgap`` files that the
rule's script imports transitively. Counted as imports: ``import`` and ``from ... import`` (absolute
and relative), every package ``__init__`` on the way, and string constants that name an otgap module,
with or without an attribute ("otgap.models.tlstm:TLSTM" registry entries, lazy-import tables).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

_REGISTRY_ENTRY = re.compile(r"^(otgap(?:\.\w+)+):[\w.]+$")


def _module_file(src: Path, name: str) -> Path | None:
    base = src.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _module_name(src: Path, path: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(src.resolve())
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(src: Path, path: Path, follow_registries: bool = True) -> set[str]:
    """otgap modules (dotted names) that the file ``path`` imports directly."""
    tree = ast.parse(path.read_text(), filename=str(path))
    this = _module_name(src, path)
    package = None
    if this is not None:
        package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:  # relative import: resolve against this file's package
                if package is None:
                    continue
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            if module:
                found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names)
        elif follow_registries and isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = _REGISTRY_ENTRY.match(node.value)
            if m:
                found.add(m.group(1))
    mods: set[str] = set()
    for name in found:
        if name == "otgap" or name.startswith("otgap."):
            parts = name.split(".")
            # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
            for i in range(1, len(parts) + 1):
                if _module_file(src, ".".join(parts[:i])) is not None:
                    mods.add(".".join(parts[:i]))
    return mods


def source_dependencies(repo: str | Path, *roots: str, follow_registries: bool = True) -> list[str]:
    """Sorted repo-relative paths of the src/otgap files that ``roots`` import, transitively.

    ``roots`` are script paths relative to ``repo`` (e.g. "scripts/fhn_data.py") or otgap module
    names (e.g. "otgap.curvature").
    """
    return list(_cached(str(Path(repo).resolve()), tuple(roots), follow_registries))


@cache
def _cached(repo: str, roots: tuple[str, ...], follow_registries: bool) -> tuple[str, ...]:
    base = Path(repo)
    src = base / "src"
    todo: list[str] = []
    for root in roots:
        p = base / root
        if root.endswith(".py"):
            if not p.is_file():
                raise ValueError(f"source dependencies: script '{root}' does not exist")
            todo.extend(imports_of(src, p, follow_registries))
        elif _module_file(src, root) is not None:
            todo.append(root)
        else:
            raise ValueError(
                f"source dependencies: '{root}' is neither a script nor an otgap module"
            )
    seen: set[str] = set()
    files: set[Path] = set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        f = _module_file(src, mod)
        if f is None:
            continue
        files.add(f)
        todo.extend(imports_of(src, f, follow_registries) - seen)
    return tuple(sorted(str(f.relative_to(base)) for f in files))


def code_digests(paths: list[str] | tuple[str, ...], base: str | Path = ".") -> dict[str, str]:
    """SHA-256 of each file's content, keyed by its path as given (relative to ``base``).

    A job passes the code files of its rule (its script and the modules it imports) so that its
    checkpoint is keyed by the code that wrote it; content, not modification time, counts.
    """
    out = {}
    for p in sorted(str(x) for x in paths):
        out[p] = hashlib.sha256((Path(base) / p).read_bytes()).hexdigest()
    return out


def job_identity(params: Mapping[str, Any], code: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """What makes a training job this job: its parameters and the digests of its code files.

    The training loop stores it in checkpoints and resumes only a checkpoint of the same identity.
    """
    return {"params": dict(params), "code": code_digests(list(code))}
