"""Atomic file writing: an output either exists complete or not at all.

Every writer here writes to a temporary file in the destination folder and renames it over the
final name (``os.replace`` is atomic on POSIX within one file system), so a crash or a full disk
never leaves a half-written result behind for Snakemake or a reader to pick up. The file then gets
the mode the umask gives a new file (0644 under umask 022), not the 0600 of a temporary file, so
collaborators and web servers on a shared machine can read results.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class OutputError(RuntimeError):
    """An output location cannot be written."""


class UnreadableInput(ValueError):
    """An input file exists but cannot be read (truncated, corrupt). ``path`` names it, so that a
    workflow job can set it aside for rebuilding (see ``otgap.jobs``)."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) and check that it can be written; raise a clear error otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output directory '{p}': {exc.strerror}. "
            "Choose a writable results root (config key 'results_root') or fix the permissions."
        ) from exc
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(
            f"output directory '{p}' is not writable. "
            "Choose a writable results root (config key 'results_root') or fix the permissions."
        )
    return p


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Check, without creating anything, that ``path`` is or can become a writable directory.

    The nearest existing ancestor must be a writable directory (so that a dry run or a plan
    leaves no empty results folder behind, yet an unwritable results root fails at start-up).
    """
    p = Path(path)
    probe = p.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    hint = "Choose a writable results root (config key 'results_root') or fix the permissions."
    if not probe.is_dir():
        raise OutputError(
            f"cannot create output directory '{p}': '{probe}' is not a directory. {hint}"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "output directory" if probe == p.absolute() else f"directory '{probe}' above"
        raise OutputError(f"{what} '{p}' is not writable. {hint}")
    return p


def _umask() -> int:
    """The process's umask, read without changing it where /proc allows (thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a new file gets under the current umask (0644 under umask 022)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    ``suffix`` defaults to the final name's suffix, because some writers (numpy, matplotlib) choose
    the format from it.
    """
    final = Path(path)
    ensure_writable_dir(final.parent)
    sfx = final.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{sfx}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, default_file_mode())
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON atomically (numpy scalars and arrays converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write a compressed npz atomically.

    numpy's zip writer stamps each member with a fixed date, so the same arrays give the same bytes.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def write_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically, through a file object so that the archive's record name does not
    depend on the (random) temporary name: the same object gives the same bytes."""
    import torch

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV atomically (no index, full float precision)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def write_parquet(path: str | os.PathLike, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load an npz into a dict; a missing/unreadable file or a missing key is a clear error."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"input file '{p}' does not exist; run the rule that makes it first"
        )
    try:
        with np.load(p, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
        raise UnreadableInput(p, f"input file '{p}' is not a readable npz archive: {exc}") from exc
    missing = [k for k in required if k not in out]
    if missing:
        raise KeyError(f"input file '{p}' lacks the key(s) {missing}; it has {sorted(out)}")
    return out
