"""The workflow from another working directory: `snakemake -s <clone>/workflow/Snakefile
--directory <elsewhere>` finds its config, scripts and library files beside the Snakefile and
plans the run's outputs under <elsewhere>."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, job_counts

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.mark.slow
def test_dry_run_from_another_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [
            SNAKEMAKE, "-n", "--cores", "1", "-s", str(REPO / "workflow" / "Snakefile"),
            "--directory", str(elsewhere), "--configfile", str(REPO / "config" / "quick.yaml"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    counts = job_counts(out)
    assert counts.get("fhn_train", 0) > 0 and counts.get("eos_train", 0) > 0, counts
    # the run's folders are made in the working directory, not in the clone
    assert (elsewhere / "results" / "quick").is_dir() or "results/quick" in out
    assert f"Working directory: {elsewhere}" in out or str(elsewhere) in out
