"""Shared fixtures. End-to-end tests read ONE finished quick-config run instead of running their own.

`make test` runs the quick workflow first (incrementally), then pytest. Outside `make test` the
``quick_run`` fixture skips when the quick run is missing or out of date, unless
OTGAP_REQUIRE_QUICK=1 (set by `make test` and CI), in which case it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests use tiny tensors: one thread is faster and keeps timings stable on a shared 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a dependency
    pass

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
QUICK = ["--configfile", "config/quick.yaml"]


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the venv's snakemake on the workflow (dry runs mostly) and capture its output."""
    cmd = [SNAKEMAKE, "-s", "workflow/Snakefile", "--cores", "2", *args]
    # The full per-job listing (inputs, outputs), which tests read, not the one-line console.
    env = {**os.environ, "OTGAP_JOB_DETAILS": "1"}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a (dry) run into {rule: count}."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return counts
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="session")
def quick_run() -> Path:
    """Results root of a finished, up-to-date quick run (results/quick)."""
    proc = snakemake("-n", *QUICK)
    done = proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr
    if not done:
        msg = "the quick run is missing or out of date: run `make quick` first"
        if os.environ.get("OTGAP_REQUIRE_QUICK") == "1":
            pytest.fail(f"{msg}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        pytest.skip(msg)
    return REPO / "results" / "quick"
