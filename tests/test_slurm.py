"""The SLURM profile against a real SLURM cluster (no mocks): `bash .ci/slurm-up.sh` starts one.

Runs part of the FHN data stage of the quick config (the Lyapunov job and two datasets) through
profiles/slurm plus the overlay tests/slurm_profile (local cluster without accounting), into a
temporary results root, and checks that the jobs went through sbatch with the resources of the
config, ran the venv's Python, and wrote valid outputs; a second run has nothing to do.

Skips when no SLURM node is idle, unless OTGAP_REQUIRE_SLURM=1 (CI), in which case it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from otgap.config import load_config, stage_resources

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
RUN_TIMEOUT = 240  # seconds; the first run takes ~1.5 min on 2 cores

# The command line under test (the README's cluster submit command plus the local overlay).
BASE_CMD = [
    str(SNAKEMAKE),
    "--profile", "profiles/slurm",
    "--workflow-profile", "tests/slurm_profile",
]  # fmt: skip
QUICK = "config/quick.yaml"

DATASET_KEYS = {
    *(f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("t", "y", "obs", "target")),
    "rollout_t", "rollout_y", "rollout_jitter", "rollout_context", "n_context",
    "rollout_unseen_t", "rollout_unseen_y", "rollout_unseen_jitter",
    "attractor_std", "attractor_orbit", "attractor_period", "lyapunov", "lyapunov_time",
}  # fmt: skip

SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
SBATCH_CALL = re.compile(r"sbatch call: (sbatch .*?) --wrap=\"(\S+) -m snakemake ")


def _cluster_problem() -> str | None:
    """Why this machine cannot run the test (None when a SLURM node is idle)."""
    for tool in ("sinfo", "sbatch", "squeue", "scontrol"):
        if shutil.which(tool) is None:
            return f"SLURM client '{tool}' not found (start a cluster with `bash .ci/slurm-up.sh`)"
    proc = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:
        return f"sinfo failed: {proc.stderr.strip()} (is slurmctld running? `bash .ci/slurm-up.sh`)"
    states = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip()]
    # exact states only: a drained or not-responding node shows as e.g. "drained" or "idle*"
    if not any(state in ("idle", "mixed") for state in states):
        return f"no SLURM node is idle (node states: {', '.join(states) or 'none'})"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = _cluster_problem()
    if problem:
        if os.environ.get("OTGAP_REQUIRE_SLURM") == "1":
            pytest.fail(f"OTGAP_REQUIRE_SLURM=1 but {problem}")
        pytest.skip(problem)


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float


def _run(args: list[str], timeout: int = RUN_TIMEOUT, env: dict | None = None) -> Run:
    """Run snakemake from the repository root; on timeout stop it and cancel its SLURM jobs."""
    start = time.monotonic()
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=env,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # snakemake cancels its jobs (scancel) on interrupt
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        run_id = re.search(r"SLURM run ID: (\S+)", out)
        if run_id:
            subprocess.run(["scancel", "--name", run_id.group(1)], check=False)
        pytest.fail(f"snakemake did not finish within {timeout} s:\n{out[-4000:]}")
    return Run(proc.returncode, out, time.monotonic() - start)


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config(REPO / "config/config.yaml", REPO / "config/quick.yaml")


@pytest.fixture(scope="module")
def slurm_run(cluster, config, tmp_path_factory):
    """One run of the Lyapunov job and two dataset jobs through SLURM, then a second run."""
    tmp = tmp_path_factory.mktemp("slurm")
    fhn = config["fhn"]
    system = fhn["systems"][0]
    data = tmp / "results" / config["run"] / "data" / "fhn" / f"system={system}"
    picks = [(fhn["conditions"][0]["name"], fhn["seeds"][0])]
    picks.append((fhn["conditions"][-1]["name"], fhn["seeds"][-1]))
    targets = [data / f"condition={c}/seed={s}/dataset.npz" for c, s in picks]
    cmd = [
        *BASE_CMD,
        "--configfile", QUICK,
        "--config", f"results_root={tmp / 'results'}", f"logs_root={tmp / 'logs'}",
        "--slurm-logdir", str(tmp / "slurm_logs"),
        "--verbose",  # prints each sbatch call
        *map(str, targets),
    ]  # fmt: skip
    first = _run(cmd)
    second = _run(cmd) if first.returncode == 0 else None
    return {"tmp": tmp, "data": data, "targets": targets, "first": first, "second": second}


def _failure(run: Run) -> str:
    return f"exit {run.returncode} after {run.seconds:.0f} s:\n{run.output[-6000:]}"


def _timelimit(minutes: int) -> str:
    """A runtime in minutes as `scontrol show job` prints TimeLimit."""
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def _scontrol(jobid: str) -> dict[str, str]:
    proc = subprocess.run(
        ["scontrol", "show", "job", "-o", jobid], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, f"scontrol show job {jobid}: {proc.stderr}"
    return dict(f.split("=", 1) for f in proc.stdout.split() if "=" in f)


def _default_partition() -> str:
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True).stdout
    return next(p.rstrip("*") for p in out.split() if p.endswith("*"))


def test_run_succeeds_and_writes_valid_datasets(slurm_run, config):
    first = slurm_run["first"]
    assert first.returncode == 0, _failure(first)
    lyap = np.load(slurm_run["data"] / "lyapunov.npz")
    assert set(lyap.files) == {"lyapunov", "attractor_std", "attractor_orbit", "attractor_period"}
    assert np.isfinite(lyap["lyapunov"]) and lyap["attractor_std"].shape == (2,)
    spec = config["fhn"]["dataset"]
    length = spec["n_context"] + spec["horizon"]
    for target in slurm_run["targets"]:
        assert target.with_name("dataset.json").is_file()
        with np.load(target) as d:
            assert set(d.files) == DATASET_KEYS, target
            for split in ("train", "val", "test"):
                assert d[f"{split}_t"].shape == (spec[f"n_{split}"], length)
                assert d[f"{split}_y"].shape == (*d[f"{split}_t"].shape, 2)
                assert np.isfinite(d[f"{split}_y"]).all()
            assert int(d["n_context"]) == spec["n_context"]
            assert d["lyapunov"] == lyap["lyapunov"]


def _submission_name(log: str) -> str:
    """rule_<rule> for a single job (its log sits one level deeper), group_<group>_<rules> for a
    job group of the profile."""
    path = Path(log)
    return path.parent.name if path.parent.name.startswith("group_") else path.parent.parent.name


def test_jobs_went_through_slurm_with_configured_resources(slurm_run, config):
    first = slurm_run["first"]
    assert first.returncode == 0, _failure(first)
    submitted = SUBMITTED.findall(first.output)
    names = sorted(_submission_name(log) for _, log in submitted)
    # the profile groups the two dataset jobs into one submission (profiles/slurm: groups)
    assert names == ["group_fhn_data_fhn_dataset", "rule_fhn_lyapunov"], first.output
    res = stage_resources(config, "fhn_data")
    partition = _default_partition()
    # a group job asks for its members' combined cores and memory (they run side by side)
    members = {"group_fhn_data_fhn_dataset": 2, "rule_fhn_lyapunov": 1}

    calls = SBATCH_CALL.findall(first.output)
    assert len(calls) == len(submitted), "expected one 'sbatch call:' line per submission"
    for flags, python in calls:
        k = 2 if "fhn_data_fhn_dataset" in flags else 1
        assert f" -t {res['runtime']} " in f"{flags} "
        assert f" --mem {k * res['mem_mb']} " in f"{flags} "
        assert f" --cpus-per-task={k * res['threads']} " in f"{flags} "
        assert f" -p {partition} " in f"{flags} "
        assert " -A " not in flags and "--gpus" not in flags and "--gres" not in flags
        # the job runs snakemake with the venv's interpreter, which imports otgap
        assert Path(python).parent == SNAKEMAKE.parent, python

    for jobid, log in submitted:
        k = members[_submission_name(log)]
        job = _scontrol(jobid)  # finished jobs stay known for MinJobAge (600 s with slurm-up.sh)
        assert job["JobState"] == "COMPLETED", job
        assert job["TimeLimit"] == _timelimit(res["runtime"])
        assert job["MinMemoryNode"] == f"{k * res['mem_mb']}M"
        assert job["NumCPUs"] == str(k * res["threads"])
        assert job["Partition"] == partition
        # the plugin's SLURM log (kept by the overlay): the job's own snakemake ran the rule(s)
        assert "Finished jobid" in Path(log).read_text(), log


def test_second_run_has_nothing_to_do(slurm_run):
    second = slurm_run["second"]
    assert second is not None, _failure(slurm_run["first"])
    assert second.returncode == 0, _failure(second)
    assert "Nothing to be done" in second.output, second.output[-3000:]
    assert not SUBMITTED.search(second.output)


def test_unsatisfiable_request_fails_with_sbatch_message(cluster, tmp_path):
    """Asking for more memory than any node has: sbatch refuses and snakemake says why."""
    overlay = tmp_path / "huge.yaml"
    overlay.write_text("resources:\n  fhn_data: {mem_mb: 99000000}\n")
    cmd = [
        *BASE_CMD,
        "--configfile", QUICK, str(overlay),
        "--config", f"results_root={tmp_path / 'results'}", f"logs_root={tmp_path / 'logs'}",
        "--slurm-logdir", str(tmp_path / "slurm_logs"),
        "--retries", "0",
        "--until", "fhn_lyapunov",
    ]  # fmt: skip
    run = _run(cmd, timeout=120)
    assert run.returncode != 0, run.output[-3000:]
    assert "SLURM sbatch failed" in run.output, run.output[-3000:]
    assert "--mem 99000000" in run.output
    assert not SUBMITTED.search(run.output)


def test_grouped_submission_and_retry_with_more_runtime(cluster, config, tmp_path):
    """The profile's job groups put several small jobs in one sbatch call, and a job whose first
    attempt fails is resubmitted with twice the runtime (runtime x attempt, common.smk)."""
    fhn = config["fhn"]
    system = fhn["systems"][0]
    data = tmp_path / "results" / config["run"] / "data" / "fhn" / f"system={system}"
    seed = fhn["seeds"][0]
    targets = [
        data / f"condition={c['name']}/seed={seed}/dataset.npz" for c in fhn["conditions"][:2]
    ]
    marks = tmp_path / "fail_once"
    marks.mkdir()
    # the first job of each rule fails once (fault injection in otgap.jobs)
    env = dict(os.environ, OTGAP_FAIL_FIRST_ATTEMPT=str(marks))
    cmd = [
        *BASE_CMD,
        "--configfile", QUICK,
        "--config", f"results_root={tmp_path / 'results'}", f"logs_root={tmp_path / 'logs'}",
        "--slurm-logdir", str(tmp_path / "slurm_logs"),
        "--verbose",
        "--groups", "fhn_dataset=datasets",
        "--group-components", "datasets=2",
        "--retries", "1",
        *map(str, targets),
    ]  # fmt: skip
    run = _run(cmd, timeout=2 * RUN_TIMEOUT, env=env)  # two attempts in series
    assert run.returncode == 0, _failure(run)
    assert (marks / "fhn_lyapunov.failed").exists(), "the injected failure did not happen"
    for target in targets:
        assert target.is_file()
    runtime = stage_resources(config, "fhn_data")["runtime"]
    calls = [flags for flags, _ in SBATCH_CALL.findall(run.output)]
    lyap = [f for f in calls if "fhn_lyapunov" in f]
    # first attempt with the configured runtime, the retry with twice as much
    assert [re.search(r" -t (\d+) ", f + " ").group(1) for f in lyap] == [
        str(runtime),
        str(2 * runtime),
    ], calls
    grouped = [f for f in calls if "datasets" in f]
    assert grouped, calls
    # one submission runs both dataset jobs: fewer sbatch calls than dataset jobs ran, counting
    # the retry of the group whose first member failed once
    assert len(grouped) < 2 * len(targets), calls
    assert "fhn_dataset.failed" in {p.name for p in marks.iterdir()}
