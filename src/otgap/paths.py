"""Where a run may write: every output under ``<results_root>/<run>/`` or ``<logs_root>/<run>/``.

Names taken from the config become folders of output paths (``run``, ``paper.compare_run``, the
wildcards ``condition``, ``system``, ``dataset``, ``model``, ``optimizer``). The schema allows only
plain folder names for them (``otgap.config.PATH_NAME_PATTERN``: never ``.``, ``..``, a hidden
name or a path), and the workflow checks once at start-up, before any job, that

- the run's results and logs folders are neither the repository nor one of its source folders
  (``run_roots``), and
- every path the workflow would write lies under one of them (``check_under``), or under the
  download cache (``data.root``) for the rules that fetch data sets.

Both checks are string operations on the paths (no file system access but one ``resolve`` per
root), so they cost nothing next to Snakemake's own start-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from otgap.config import ConfigError

# Top-level entries of the repository that hold sources, not results: a results or logs folder
# there (results_root: ., run: src) would write into tracked files.
SOURCE_FOLDERS = (
    ".git",
    ".snakemake",
    ".venv",
    "benchmarks",
    "config",
    "docs",
    "paper",
    "profiles",
    "requirements",
    "scripts",
    "src",
    "tests",
    "workflow",
)


def _absolute(path: str | os.PathLike, base: Path) -> str:
    """``path`` made absolute against ``base`` and normalised ('..' folded), without the file
    system (a result path may not exist yet)."""
    p = os.fspath(path)
    return os.path.normpath(p if os.path.isabs(p) else os.path.join(base, p))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def run_roots(config: Mapping[str, Any], repo: str | os.PathLike) -> list[str]:
    """The run's results and logs folders (absolute); ConfigError when one of them, or the
    download cache ``data.root``, is the repository, a folder above it or a source folder in it."""
    base = Path(repo).resolve()
    roots = []
    problems = []
    folders = [
        (key, f"{config.get(key)}/{config.get('run')}", f"{key} + run")
        for key in ("results_root", "logs_root")
    ]
    folders.append(("data", str(config.get("data", {}).get("root", "resources")), "data.root"))
    for key, folder, name in folders:
        root = _absolute(folder, base)
        where = f"{name} ('{folder}')"
        if _inside(str(base), root):
            problems.append(f"  {where}: resolves to '{root}', the repository or a folder above it")
        elif _inside(root, str(base)):
            top = Path(root).relative_to(base).parts[0]
            if top in SOURCE_FOLDERS:
                problems.append(
                    f"  {where}: resolves to '{root}', inside the source folder '{top}/' of the "
                    "repository"
                )
        if key != "data":
            roots.append(root)
    if problems:
        raise ConfigError(
            "invalid configuration (results and logs must go to a folder of their own):\n"
            + "\n".join(problems)
        )
    return roots


def check_under(
    paths: Iterable[str | os.PathLike], roots: Iterable[str | os.PathLike], base: str | os.PathLike
) -> None:
    """ConfigError naming the first of ``paths`` (relative ones taken from ``base``) that lies
    under none of ``roots``; a template's part before its first wildcard ('{') is what is
    checked, so rule outputs can be passed as they are declared."""
    base = Path(base).resolve()
    absroots = [_absolute(r, base) for r in roots]
    bad = []
    for path in paths:
        text = os.fspath(path)
        fixed = text.split("{", 1)[0]
        if not fixed or fixed.endswith(os.sep):
            probe = fixed or "."
        else:
            # a partial last component ('results/q/x_{n}.csv') still names its folder
            probe = fixed if "{" not in text else os.path.dirname(fixed) or "."
        where = _absolute(probe, base)
        # a template whose last fixed folder is the root itself stays inside it ('{R}/{x}.csv')
        if not any(_inside(where, r) for r in absroots):
            bad.append(text)
    if bad:
        listed = "\n".join(f"  {p}" for p in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ConfigError(
            "outputs outside the run's folders "
            f"({', '.join(str(r) for r in roots)}): check run, results_root, logs_root and the "
            f"names in the config:\n{listed}{more}"
        )
