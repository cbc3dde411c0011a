"""Harness for the thin entry points in ``scripts/`` that Snakemake runs with ``script:``.

``with job(snakemake) as log:`` sends the job's stdout/stderr to its log file, sets torch's thread
count from the rule's ``threads``, checks that outputs can be written before any work starts, prints
the elapsed time at the end, and turns an exception into one clear line (the traceback stays in the
log). The object passed in is duck-typed (``input``, ``output``, ``params``, ``log``, ``threads``,
``wildcards``), so no Snakemake import is needed and a test can pass a ``SimpleNamespace``.

An input that fails to load (``otgap.io.UnreadableInput``: a truncated or corrupt file made by an
earlier job) marks itself for rebuild: the harness renames it to a hidden ``.<name>.unreadable-<time>``
beside it (nothing is deleted) and says so, so the next run of the workflow finds it missing and
rebuilds it with the rule that made it, then reruns its consumers.

Inputs built upon are the bytes their producer wrote: when a job ends, the harness records the
SHA-256 of each declared output under the run's folder in a hidden record
(``<results_root>/<run>/.sha256/<path>.sha256``: the digest and the rule), and a job of the paper,
table and figure stages (``verifies_inputs``) compares every declared input that has a record
before its body runs. A file changed after its rule wrote it (a truncated or hand-edited macro
file) stops the job with the file named and ``snakemake --forcerun <rule>``, the command that
rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from otgap.io import UnreadableInput, ensure_writable_dir, write_text


def set_threads(threads: int) -> None:
    """Limit math libraries to ``threads``; torch only if the script has imported it already."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


FAIL_FIRST_ATTEMPT = "OTGAP_FAIL_FIRST_ATTEMPT"


def _inject_first_attempt_failure(rule: str) -> None:
    """Fault injection for the cluster tests: with OTGAP_FAIL_FIRST_ATTEMPT=<dir>, the first job
    of each rule fails once (it leaves ``<dir>/<rule>.failed`` behind), so a retry can be observed.
    Unset in normal use."""
    folder = os.environ.get(FAIL_FIRST_ATTEMPT)
    if not folder:
        return
    marker = Path(folder) / f"{rule}.failed"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    raise RuntimeError(f"injected failure of the first attempt ({FAIL_FIRST_ATTEMPT}={folder})")


def _log_path(smk: Any) -> Path | None:
    logs = list(getattr(smk, "log", []) or [])
    return Path(logs[0]) if logs else None


def set_aside_unreadable(exc: UnreadableInput, inputs: list[str]) -> str:
    """Rename the unreadable declared input ``exc.path`` aside; returns what to tell the user."""
    bad = Path(exc.path)
    declared = {Path(p).resolve() for p in inputs}
    if bad.resolve() not in declared or not bad.is_file():
        return f"'{bad}' is not an input this job declares: fix or remove it by hand"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = bad.with_name(f".{bad.name}.unreadable-{stamp}")
    os.replace(bad, aside)
    return (
        f"moved the unreadable input '{bad}' aside to '{aside}' (not deleted); run the workflow "
        "again and Snakemake rebuilds it, then this job"
    )


RECORDS = ".sha256"
# Rules whose inputs are checked against their records: the paper, table and figure stages (and
# the aggregates that tables and figures read, and the manifest).
_VERIFYING = re.compile(
    r"^(paper_\w+|manifest|\w+_(table|tables|figure|figures|figures_compare|aggregate|report))$"
)


class ChangedInput(ValueError):
    """A declared input is not the file its rule wrote (its SHA-256 differs from the record)."""


def _sha256(path: str | os.PathLike) -> str:
    # the same digest as otgap.manifest.sha256_file, kept here so that every job's script does
    # not import (and so depend on) the manifest module
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def verifies_inputs(rule: str) -> bool:
    return bool(_VERIFYING.match(rule))


def run_folder(smk: Any) -> Path | None:
    """``<results_root>/<run>`` of the job's config, or None (a test's duck-typed object)."""
    config = getattr(smk, "config", None)
    if not isinstance(config, dict) or not isinstance(config.get("run"), str):
        return None
    return Path(str(config.get("results_root", "results"))) / config["run"]


def record_path(path: str | os.PathLike, root: str | os.PathLike) -> Path | None:
    """Where the SHA-256 record of ``path`` lives, or None when ``path`` is outside ``root``."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return Path(root) / RECORDS / f"{rel}.sha256"


def record_outputs(outputs: list[str], root: str | os.PathLike, rule: str) -> int:
    """Write the record (SHA-256 and rule) of each output file under ``root``; returns how many."""
    n = 0
    for out in outputs:
        record = record_path(out, root)
        if record is None or not Path(out).is_file():
            continue
        write_text(record, f"{_sha256(out)}  {rule}\n")
        n += 1
    return n


def verify_inputs(inputs: list[str], root: str | os.PathLike) -> int:
    """Compare each input file that has a record with it; ChangedInput naming the file and the
    command that rebuilds it at the first difference. Returns how many were compared."""
    n = 0
    for path in inputs:
        record = record_path(path, root)
        if record is None or not record.is_file() or not Path(path).is_file():
            continue
        fields = record.read_text().split()
        if len(fields) != 2:
            continue
        want, rule = fields
        got = _sha256(path)
        if got != want:
            raise ChangedInput(
                f"input '{path}' is not the file rule {rule} wrote (SHA-256 {got[:16]}... "
                f"instead of {want[:16]}...): it was changed after it was made. Rebuild it with "
                f"`snakemake --forcerun {rule}` and this run's other options (--profile, "
                "--configfile), which reruns this job too"
            )
        n += 1
    return n


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
        _inject_first_attempt_failure(rule)
        root = run_folder(smk)
        if root is not None and verifies_inputs(rule):
            inputs = [str(p) for p in (getattr(smk, "input", []) or [])]
            log(f"{verify_inputs(inputs, root)} input(s) match the SHA-256 their rules recorded")
        yield log
        if root is not None:
            outputs = [str(p) for p in (getattr(smk, "output", []) or [])]
            record_outputs(outputs, root, rule)
        log(f"done in {time.perf_counter() - t0:.1f} s")
    except BaseException as exc:
        if stream is not None:
            traceback.print_exc(file=stream)
        message = f"[{rule}] FAILED: {type(exc).__name__}: {exc}"
        if isinstance(exc, UnreadableInput):
            inputs = [str(p) for p in (getattr(smk, "input", []) or [])]
            message += "\n" + f"[{rule}] " + set_aside_unreadable(exc, inputs)
        print(message, file=old_err, flush=True)
        if stream is not None:
            print(message, file=stream, flush=True)
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        if stream is not None:
            stream.close()
