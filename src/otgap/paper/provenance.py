"""Caption tails that say where a figure or table came from: rule, script, short git commit.

The commit is read from the provenance sidecar that the producing (or nearest upstream) rule wrote
(``otgap.train.provenance``): ``<sha>`` or ``<sha>-dirty`` becomes ``<7 hex>`` or ``<7 hex>+dirty``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from otgap.tables.latex import tex_escape


def short_commit(commit: str | None) -> str:
    """``abcdef0123...-dirty`` -> ``abcdef0+dirty``; anything unreadable -> ``unknown``."""
    if not commit or commit == "unknown":
        return "unknown"
    dirty = commit.endswith("-dirty")
    sha = commit.removesuffix("-dirty")
    return sha[:7] + ("+dirty" if dirty else "")


def sidecar_commit(path: str | Path | None) -> str:
    """Short commit from a sidecar JSON (key ``provenance.git_commit`` or ``git_commit``)."""
    if path is None or not Path(path).is_file():
        return "unknown"
    try:
        data: Any = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return "unknown"
    record = data.get("provenance", data) if isinstance(data, dict) else {}
    return short_commit(record.get("git_commit") if isinstance(record, dict) else None)


def caption_tail(rule: str, script: str, sidecar: str | Path | None) -> str:
    """LaTeX sentence ending a caption: the rule that made it and a pointer to the appendix table
    that lists, once per run, each result's rule, script, commit and parameters hash."""
    # the commit, script and parameters hash are listed once per run in the appendix table
    # (otgap.paper.scope.provenance_table); a caption names its rule and points there
    del script, sidecar
    return (
        f"\\emph{{Made by rule \\texttt{{{tex_escape(rule)}}} "
        "(provenance: Table~\\ref{tab:provenance}).}"
    )
