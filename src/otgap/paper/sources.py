"""Reading the workflow's results for the paper without failing on what a stage has not made."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from otgap.io import atomic_path


def read_csv_or_none(path: str | Path | None) -> pd.DataFrame | None:
    """The CSV as a frame, or None when the path is missing, empty or unreadable."""
    if not path or not Path(path).is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return None


def read_lyapunov(path: str | Path | None) -> float | None:
    """The largest Lyapunov exponent from the data stage's ``lyapunov.json`` (None if absent)."""
    if not path or not Path(path).is_file():
        return None
    try:
        value = json.loads(Path(path).read_text()).get("lyapunov")
        return None if value is None else float(value)
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    """Copy a file so that ``dst`` is either absent or complete."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def first(paths: object) -> str | None:
    """First of a Snakemake input list (or the string itself), None when empty."""
    if paths is None:
        return None
    if isinstance(paths, str | Path):
        return str(paths)
    items = list(paths)  # type: ignore[call-overload]
    return str(items[0]) if items else None
