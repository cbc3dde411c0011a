"""Rerun-only-what-changed, checked with dry runs against the finished quick run.

Each test works in a copy of the repository whose results are hard links to the quick run's (and
whose .snakemake metadata is copied), so editing a source file or a config value there never
disturbs the real run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from otgap.config import load_config

from .conftest import REPO, job_counts, snakemake

pytestmark = pytest.mark.e2e

QUICK_CFG = load_config(REPO / "config" / "config.yaml", REPO / "config" / "quick.yaml")


@pytest.fixture
def repo_copy(quick_run, tmp_path) -> Path:
    dst = tmp_path / "repo"
    dst.mkdir()
    for name in ("workflow", "scripts", "src", "config", "profiles", "paper"):
        shutil.copytree(REPO / name, dst / name, copy_function=shutil.copy2)
    # results/<paper.compare_run>: the quick paper reads that run's tables when they exist
    compare_run = QUICK_CFG.get("paper", {}).get("compare_run", "original_quick")
    for name in ("results/quick", "logs/quick", f"results/{compare_run}"):
        if (REPO / name).exists():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(REPO / name), str(dst / name)], check=True)
    shutil.copytree(REPO / ".snakemake" / "metadata", dst / ".snakemake" / "metadata")
    return dst


def dry_run(cwd: Path, overlay: Path | None = None) -> dict[str, int]:
    # one --configfile flag with both files: a second flag would replace the first
    configs = ["--configfile", "config/quick.yaml"] + ([str(overlay)] if overlay else [])
    proc = snakemake("-n", *configs, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return job_counts(proc.stdout + proc.stderr)


def touch_source(path: Path) -> None:
    """Edit a file the way a developer would: append a comment (content and mtime change)."""
    with open(path, "a") as fh:
        fh.write("\n# edited by test_workflow\n")
    st = path.stat()
    os.utime(path, (st.st_atime + 5, st.st_mtime + 5))


def fhn_rules(counts):
    return {r for r in counts if r.startswith("fhn_")}


def eos_rules(counts):
    return {r for r in counts if r.startswith("eos_")}


def test_nothing_to_do_after_a_full_run(repo_copy):
    assert dry_run(repo_copy) == {}


def test_changing_one_condition_reruns_only_its_jobs(repo_copy, tmp_path):
    conditions = [dict(c) for c in QUICK_CFG["fhn"]["conditions"]]
    changed = conditions[-1]
    changed["obs_fraction"] = round(changed["obs_fraction"] * 0.8, 3)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"fhn": {"conditions": conditions}}))
    counts = dry_run(repo_copy, overlay)
    per_system = QUICK_CFG["fhn"].get("system_conditions", {})
    n_seeds = len(QUICK_CFG["fhn"]["seeds"])
    n_systems = sum(  # systems that run the changed condition
        changed["name"] in (per_system.get(s) or [c["name"] for c in conditions])
        for s in QUICK_CFG["fhn"]["systems"]
    )
    assert counts.get("fhn_dataset") == n_seeds * n_systems
    assert "fhn_lyapunov" not in counts
    assert not eos_rules(counts)
    # one training job per model of the changed condition only (each job loops over the seeds)
    assert counts.get("fhn_train") == len(QUICK_CFG["fhn"]["models"]) * n_systems


def test_changing_an_eos_value_leaves_fhn_alone(repo_copy, tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"eos": {"eig_subset": QUICK_CFG["eos"]["eig_subset"] // 2}}))
    counts = dry_run(repo_copy, overlay)
    assert counts and not fhn_rules(counts)
    assert eos_rules(counts)


def test_editing_the_mask_module_reruns_datasets_not_the_lyapunov_stage(repo_copy):
    touch_source(repo_copy / "src" / "otgap" / "data" / "masks.py")
    counts = dry_run(repo_copy)
    q = QUICK_CFG["fhn"]
    per_system = q.get("system_conditions", {})
    n_cells = sum(len(per_system.get(s) or q["conditions"]) for s in q["systems"])
    expected = n_cells * len(q["seeds"])
    assert counts.get("fhn_dataset") == expected
    assert "fhn_lyapunov" not in counts
    assert not eos_rules(counts)


def test_editing_a_curvature_module_reruns_only_eos(repo_copy):
    touch_source(repo_copy / "src" / "otgap" / "curvature" / "lanczos.py")
    counts = dry_run(repo_copy)
    assert eos_rules(counts)
    assert not fhn_rules(counts)


def test_editing_a_script_reruns_its_rule_and_downstream(repo_copy):
    touch_source(repo_copy / "scripts" / "fhn_lyapunov.py")
    counts = dry_run(repo_copy)
    assert counts.get("fhn_lyapunov") == len(QUICK_CFG["fhn"]["systems"])
    assert not eos_rules(counts)


def test_touching_every_source_file_plans_nothing(repo_copy):
    """Reruns follow content, not modification times (a checkout of identical files)."""
    later = time.time() + 60
    for folder in ("scripts", "src", "workflow"):
        for f in (repo_copy / folder).rglob("*"):
            if f.is_file():
                os.utime(f, (later, later))
    assert dry_run(repo_copy) == {}


def test_quick_results_are_readable_by_everyone(quick_run):
    """`find results/quick -type f ! -perm -u=r,g=r,o=r` is empty (umask 022)."""
    unreadable = [
        f for f in quick_run.rglob("*") if f.is_file() and f.stat().st_mode & 0o444 != 0o444
    ]
    assert unreadable == []
