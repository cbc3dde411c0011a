"""Harness for the thin entry points in ``scripts/`` that Snakemake runs with ``script:``.

``with job(snakemake) as log:`` sends the job's stdout/stderr to its log file, sets torch's thread
count from the rule's ``threads``, checks that outputs can be written before any work starts, prints
the elapsed time at the end, and turns an exception into one clear line (the traceback stays in the
log). The object passed in is duck-typed (``input``, ``output``, ``params``, ``log``, ``threads``,
``wildcards``), so no Snakemake import is needed and a test can pass a ``SimpleNamespace``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from otgap.io import ensure_writable_dir


def set_threads(threads: int) -> None:
    """Limit math libraries to ``threads``; torch only if the script has imported it already."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _log_path(smk: Any) -> Path | None:
    logs = list(getattr(smk, "log", []) or [])
    return Path(logs[0]) if logs else None


@contextlib.contextmanager
def job(smk: Any, *, name: str | None = None) -> Iterator[Callable[[str], None]]:
    """Run a workflow job body with logging, threads and clear failure messages."""
    rule = name or getattr(smk, "rule", None) or "job"
    log_path = _log_path(smk)
    stream = None
    old_out, old_err = sys.stdout, sys.stderr
    if log_path is not None:
        ensure_writable_dir(log_path.parent)
        stream = open(log_path, "w", buffering=1)  # noqa: SIM115 - closed in finally
        sys.stdout = sys.stderr = stream

    def log(msg: str) -> None:
        print(f"[{rule}] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    try:
        threads = int(getattr(smk, "threads", 1) or 1)
        set_threads(threads)
        for out in list(getattr(smk, "output", []) or []):
            ensure_writable_dir(Path(out).parent)
        wildcards = dict(getattr(smk, "wildcards", {}) or {})
        log(f"start; wildcards={wildcards} threads={threads}")
        yield log
        log(f"done in {time.perf_counter() - t0:.1f} s")
    except BaseException as exc:
        if stream is not None:
            traceback.print_exc(file=stream)
        message = f"[{rule}] FAILED: {type(exc).__name__}: {exc}"
        print(message, file=old_err, flush=True)
        if stream is not None:
            print(message, file=stream, flush=True)
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        if stream is not None:
            stream.close()
