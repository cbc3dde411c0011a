"""What profiles/slurm asks SLURM for, without a cluster: the sbatch calls of a real Snakemake run
whose `sbatch` is a stub that records its arguments (no mocks inside Snakemake or its plugin).

The grouped EoS analysis jobs each ask for a GPU; Snakemake sums the resources of a group's
members that run side by side, so without the profile's `resources: gpu=1` cap (scope local) a
group of five asked one node for five GPUs. Here every group submission must ask for one GPU, one
member's cores and memory, and the members' runtimes added up (they run one after the other);
jobs that are never grouped keep their own request; small jobs ask for no GPU. A cluster run that
picked up profiles/default's `cores: all` stops before submitting anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from otgap.plan import parse_jobs

from .conftest import REPO

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
STUB = """#!/bin/sh
printf '%s\\n' "$@" > "$STUB_LOG/call.$$"
echo "$$"
"""
# the analysis stage as on a GPU cluster (config.yaml's shape), small numbers to tell them apart
ANALYSIS = {"threads": 2, "mem_mb": 3000, "runtime": 20, "gpu": 1}


def _stub_path(tmp: Path) -> str:
    bin_ = tmp / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text(STUB)
    for tool, code in (("scontrol", 1), ("sacct", 0), ("squeue", 0), ("sinfo", 0)):
        (bin_ / tool).write_text(f"#!/bin/sh\nexit {code}\n")
    for exe in bin_.iterdir():
        exe.chmod(0o755)
    return f"{bin_}{os.pathsep}{os.environ['PATH']}"


def _calls(log: Path) -> list[list[str]]:
    return [p.read_text().splitlines() for p in sorted(log.glob("call.*"))]


def _flag(call: list[str], name: str) -> str | None:
    for i, arg in enumerate(call):
        if arg == name:
            return call[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.fixture(scope="module")
def grouped_submission(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm_groups")
    overlay = tmp / "gpu.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "results_root": str(tmp / "results"),
                "logs_root": str(tmp / "logs"),
                "resources": {"eos_analysis": ANALYSIS},
            }
        )
    )
    configs = ["--configfile", "config/quick.yaml", str(overlay)]
    env = dict(os.environ, OTGAP_JOB_DETAILS="1")
    # the analysis jobs and what they need: pretend training finished (empty files, newer than
    # the code), so the run submits exactly the analysis jobs
    listing = subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "64", "--workflow-profile", "none", "eos_all", *configs],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stdout[-3000:] + listing.stderr[-3000:]
    jobs = parse_jobs(listing.stdout + listing.stderr)
    for job in jobs:
        if job.rule in ("eos_train", "eos_download"):
            for out in job.output:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                Path(out).touch()
    analysis = [j for j in jobs if j.rule in ("eos_landscape", "eos_spectrum")]
    assert analysis, listing.stdout[-2000:]
    targets = [j.output[0] for j in analysis]
    log = tmp / "calls"
    log.mkdir()
    run = subprocess.run(
        [
            SNAKEMAKE, "--nolock", "--profile", "profiles/slurm", "--workflow-profile", "none",
            "--immediate-submit", "--notemp", "--retries", "0",
            "--slurm-logdir", str(tmp / "slurm_logs"), *configs, "--", *targets,
        ],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(env, PATH=_stub_path(tmp), STUB_LOG=str(log)),
    )  # fmt: skip
    return {"run": run, "calls": _calls(log), "n_jobs": len(analysis), "tmp": tmp}


def test_grouped_gpu_jobs_ask_one_node_for_one_gpu(grouped_submission):
    run, calls = grouped_submission["run"], grouped_submission["calls"]
    assert calls, run.stdout[-3000:] + run.stderr[-3000:]
    groups_cfg = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    size = int(dict(g.split("=") for g in groups_cfg["group-components"])["eos_analysis"])
    members_seen = 0
    for call in calls:
        wrap = next(a for a in call if a.startswith("--wrap="))
        members = re.findall(r"'(eos_(?:landscape|spectrum)):", wrap)
        assert members, wrap[:300]
        members_seen += len(members)
        k = len(members)
        assert k <= size
        # one GPU however many members; one member's cores and memory; runtimes added up
        gpus = _flag(call, "--gpus") or _flag(call, "--gres")
        assert gpus in ("1", "gpu:1"), call
        assert _flag(call, "--cpus-per-task") == str(ANALYSIS["threads"]), call
        assert _flag(call, "--mem") == str(ANALYSIS["mem_mb"]), call
        assert _flag(call, "-t") == str(k * ANALYSIS["runtime"]), call
    assert members_seen == grouped_submission["n_jobs"]
    assert any(len(re.findall(r"'eos_(?:landscape|spectrum):", c[-1] + " ".join(c))) > 1
               for c in calls), "no group of several jobs was submitted"  # fmt: skip


def test_small_jobs_ask_for_no_gpu():
    """The Landau boundary GIFs (seconds each) use the figures stage, which asks for no GPU."""
    from otgap.config import load_config, stage_resources

    text = (REPO / "workflow/rules/systems_landau.smk").read_text()
    block = text.split("rule systems_landau_boundary:")[1].split("\nrule ")[0]
    stage = re.search(r'\*\*res\("(\w+)"\)', block).group(1)
    cfg = load_config(REPO / "config/config.yaml")
    assert stage_resources(cfg, stage)["gpu"] == 0, stage


def test_cluster_run_with_local_profile_cores_stops_before_submitting(tmp_path):
    """profiles/slurm WITHOUT `--workflow-profile none`: profiles/default's `cores: all` (here
    1 core) would cap a 2-thread stage; the run stops at start-up and names the flag."""
    overlay = tmp_path / "o.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "results_root": str(tmp_path / "results"),
                "logs_root": str(tmp_path / "logs"),
                "resources": {"fhn_data": {"threads": 2}},
            }
        )
    )
    log = tmp_path / "calls"
    log.mkdir()
    run = subprocess.run(
        [
            SNAKEMAKE, "--nolock", "--profile", "profiles/slurm", "--cores", "1",
            "--slurm-logdir", str(tmp_path / "slurm_logs"),
            "--configfile", "config/quick.yaml", str(overlay), "--", "fhn_all",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PATH=_stub_path(tmp_path), STUB_LOG=str(log)),
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "--workflow-profile none" in out and "fhn_data (threads 2)" in out, out[-3000:]
    assert not _calls(log), "jobs were submitted"
