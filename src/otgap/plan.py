"""What a run will cost, before it is launched: jobs per rule, CPU/GPU hours, peak memory, disk.

``python -m otgap.plan --configfile config/quick.yaml`` (``make plan``) lists every job of the
config's DAG with a forced dry run (``snakemake -n --forceall``, so a finished run is planned as if
from scratch) and gives each job a duration, a peak memory and the bytes it writes, from the first
of these sources that has it:

1. ``measured``: the job's own benchmark file from an earlier run of the same config
   (``logs/<run>/benchmarks/...``; Snakemake's ``s``, ``max_rss`` and ``io_out`` columns).
2. ``measured (rule)``: the mean over the measured jobs of the same rule and the same kind (model
   or optimizer wildcard), for jobs of a grid that was only partly run.
3. ``calibrated``: ``python -m otgap.plan calibrate`` (``make calibrate``) runs the config's DAG
   reduced to one cell of each kind (first seed, first learning rate, the focus condition; all
   models, optimizers, systems), at the config's real data sizes and widths, in a scratch folder,
   with each job's work units (``work_units``: epochs x seeds for FHN training, steps or epochs
   for EoS training, Hessian-vector products for a spectrum, grid points for a landscape, ...)
   made small. Training jobs split their own time (``loop_split``: the benchmark file gives the
   whole job, ``run.json`` the loop's time after each evaluation and the epochs or steps it did;
   the loop's first period is warm-up, the rest gives the steady cost per unit), and spectra and
   landscapes time their products or grid (``work_seconds``), so one short run gives their fixed
   part and their cost per unit. FHN cells train again with all the config's seeds (batched,
   as the jobs run; ``seed_fit``), at the full horizon; the Landau boundary jobs run again at
   more frames and are fitted ``seconds = a + b * units``. The plan evaluates each
   fit at the config's full units; rules without work units take the mean of their calibration
   jobs. MedMNIST files are replaced by random files of the official shape; downloads that
   cannot be faked (MNIST, when its files are absent) are left out with their downstream jobs,
   and named.
4. ``assumed``: rules with no benchmark (aggregates, figures) cost a process start-up, taken from
   the calibration when there is one.

CPU-hours are seconds x threads; GPU-hours are the allocation a job asks for (seconds x gpu, for
stages whose ``resources`` ask for a GPU), computed from CPU-measured seconds and so an upper bound
of the time a GPU would take. Training lengths are upper bounds where training stops early.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# Wildcards that change what a job costs; the other ones (seed, condition, lr) do not.
KIND_WILDCARDS = ("model", "optimizer", "system", "dataset")
CALIBRATION_NAME = "calibration.json"
DEFAULT_STARTUP_S = 5.0


class PlanError(RuntimeError):
    """The plan could not be made (a failed dry run, an unreadable config)."""


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    benchmark: str | None
    threads: int = 1
    resources: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    def kind(self) -> str:
        return ",".join(f"{k}={self.wildcards[k]}" for k in KIND_WILDCARDS if k in self.wildcards)


@dataclass
class Estimate:
    seconds: float
    max_rss_mb: float | None
    io_out_mb: float | None
    source: str


# ---- the DAG ---------------------------------------------------------------------------------


def snakemake_cmd(repo: Path = REPO) -> list[str]:
    exe = repo / ".venv" / "bin" / "snakemake"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def _dry_env() -> dict[str, str]:
    """The environment of the plan's own Snakemake calls, with a SLURM probe that answers at once.

    Snakemake's SLURM plugin runs ``scontrol show config`` whenever Snakemake starts, even for a
    local run; where a SLURM client is installed but no controller answers, that call waits its
    10 s timeout. The plan runs locally, so a stub ``scontrol`` that fails at once comes first on
    its PATH (the user's own Snakemake runs are untouched).
    """
    stub = Path(tempfile.gettempdir()) / f"otgap-plan-{os.getuid()}"
    exe = stub / "scontrol"
    if not exe.exists():
        stub.mkdir(parents=True, exist_ok=True)
        tmp = stub / f"scontrol.{os.getpid()}"
        tmp.write_text("#!/bin/sh\nexit 1\n")
        tmp.chmod(0o755)
        tmp.replace(exe)
    env = dict(os.environ)
    env["PATH"] = f"{stub}{os.pathsep}{env.get('PATH', '')}"
    # Snakemake's full job listing (inputs, outputs, benchmark, resources) for parse_jobs, not
    # the one-line-per-job console of the profiles (set_job_messages in workflow/rules/common.smk)
    env["OTGAP_JOB_DETAILS"] = "1"
    return env


def dry_run(
    configfiles: list[str],
    *,
    repo: Path = REPO,
    extra: Iterable[str] = (),
    force: bool = True,
) -> str:
    """Text of a dry run; ``force`` (default): every job of the DAG, as if nothing existed."""
    cmd = [
        *snakemake_cmd(repo),
        "-n",
        *(["--forceall"] if force else []),
        # many cores, so that the listing shows each rule's own thread count
        "--cores",
        "256",
        "--profile",
        "profiles/default",
        *extra,
    ]
    if configfiles:
        cmd += ["--configfile", *configfiles]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=_dry_env())
    if proc.returncode != 0:
        # Snakemake writes its error to either stream (and a profile notice to stderr)
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise PlanError(f"the dry run failed ({' '.join(cmd)}):\n{tail}")
    return proc.stdout + proc.stderr


_RULE = re.compile(r"^(?:local)?rule (\w+):\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")


def parse_jobs(text: str) -> list[Job]:
    """Jobs of a ``snakemake -n`` listing: rule, wildcards, benchmark path, threads, resources."""
    jobs: list[Job] = []
    current: Job | None = None
    for line in text.splitlines():
        m = _RULE.match(line)
        if m:
            current = Job(rule=m.group(1), wildcards={}, benchmark=None)
            jobs.append(current)
            continue
        if current is None:
            continue
        f = _FIELD.match(line)
        if not f:
            if not line.strip():
                current = None
            continue
        key, value = f.groups()
        if key == "wildcards":
            current.wildcards = _pairs(value)
        elif key == "benchmark":
            current.benchmark = value.strip()
        elif key == "threads":
            current.threads = int(value)
        elif key == "resources":
            current.resources = _pairs(value)
        elif key == "output":
            current.output = [o.strip() for o in value.split(", ") if o.strip()]
    return [j for j in jobs if j.rule != "all"]


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(", "):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def rule_stages(repo: Path = REPO) -> dict[str, str]:
    """Rule name -> stage (the rule file it is defined in, without .smk)."""
    stages = {}
    for path in sorted((repo / "workflow" / "rules").glob("*.smk")):
        for line in path.read_text().splitlines():
            m = _RULE.match(line)
            if m:
                stages[m.group(1)] = path.stem
    return stages


# ---- the config ------------------------------------------------------------------------------


def load_config(configfiles: list[str], repo: Path = REPO) -> dict[str, Any]:
    """The merged config as the workflow sees it (config.yaml, then the overlays), checked by the
    workflow's own start-up checks (otgap.config.check_config; ConfigError when it fails)."""
    from otgap.config import check_config
    from otgap.config import load_config as _load

    paths = [
        repo / "config" / "config.yaml",
        *(Path(c) if Path(c).is_absolute() else repo / c for c in configfiles),
    ]
    return check_config(_load(*paths), repo / "workflow" / "schemas" / "config.schema.yaml", repo)


def _fhn_epochs(config: Mapping[str, Any], job: Job) -> float:
    train = config["fhn"]["train"]
    model = job.wildcards.get("model")
    epochs = train["epochs"]
    epochs = train.get("overrides", {}).get(model, {}).get("epochs", epochs)
    system = config["fhn"]["train"].get("system_overrides", {}).get(job.wildcards.get("system"), {})
    epochs = system.get("train", {}).get("epochs", epochs)
    epochs = system.get("overrides", {}).get(model, {}).get("epochs", epochs)
    return float(epochs)


def work_units(config: Mapping[str, Any], job: Job) -> float | None:
    """What a job's time scales with, in units the calibration varies; None: a fixed cost.

    fhn_train: epochs x seeds (one job trains every seed of its cell); fhn_evaluate: rollout
    length x seeds;
    eos_train: steps (full batch) or epochs; eos_spectrum: Hessian-vector products (start,
    middle and end snapshot, each SLQ probes x Lanczos steps + the trace's products);
    eos_landscape: grid points per plane; systems_landau_train: epochs; boundary: frames;
    systems_ode_a1_reference: starts solved (each at the config's own solver settings).
    """
    rule = job.rule
    if rule == "fhn_train":
        return _fhn_epochs(config, job) * len(config["fhn"]["seeds"])
    if rule == "fhn_evaluate":
        # the rollouts' time steps, one after another (all rollouts of a seed form one batch)
        ds = config["fhn"]["dataset"]
        return float(len(config["fhn"]["seeds"]) * ds["rollout_length"])
    if rule == "eos_train":
        for entry in config["eos"]["optimizers"]:
            if entry["name"] == job.wildcards.get("optimizer"):
                return float(entry.get("steps") or entry.get("epochs") or 0) or None
        return None
    if rule == "eos_spectrum":
        s = config["eos"]["spectrum"]
        return 3.0 * (int(s["n_vectors"]) * int(s["n_iter"]) + int(s["trace_matvecs"]))
    if rule == "eos_landscape":
        return float(config["eos"]["landscape"]["grid"]) ** 2
    if rule == "systems_ode_a1_reference":
        a1 = config.get("systems", {}).get("ode_solver", {}).get("a1_reference", {})
        return float(a1.get("n_starts", 1))
    landau = config.get("systems", {}).get("landau", {})
    if rule == "systems_landau_train" and "train" in landau:
        return float(landau["train"]["epochs"])
    if rule == "systems_landau_boundary" and "boundary" in landau:
        # frames: each one evaluates the whole decision grid
        b = landau["boundary"]
        return float(int(b["epochs"]) // int(b.get("frame_every", 1)) + 1)
    return None


# ---- measurements ----------------------------------------------------------------------------


def read_benchmark(path: Path) -> Estimate | None:
    """Seconds, peak RSS and MB written of a Snakemake benchmark file (mean over its repeats)."""
    try:
        with open(path) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return None
    if not rows:
        return None

    def col(name: str) -> float | None:
        vals = []
        for r in rows:
            try:
                vals.append(float(r[name]))
            except (KeyError, TypeError, ValueError):
                pass
        return statistics.fmean(vals) if vals else None

    seconds = col("s")
    if seconds is None:
        return None
    return Estimate(seconds, col("max_rss"), col("io_out"), "measured")


def measured(jobs: list[Job], repo: Path) -> dict[int, Estimate]:
    out = {}
    for i, job in enumerate(jobs):
        if job.benchmark:
            est = read_benchmark(repo / job.benchmark)
            if est is not None:
                out[i] = est
    return out


def _group_mean(ests: list[Estimate], source: str) -> Estimate:
    rss = [e.max_rss_mb for e in ests if e.max_rss_mb is not None]
    io = [e.io_out_mb for e in ests if e.io_out_mb is not None]
    return Estimate(
        statistics.fmean(e.seconds for e in ests),
        max(rss) if rss else None,
        statistics.fmean(io) if io else None,
        source,
    )


# ---- the plan --------------------------------------------------------------------------------


def estimate_jobs(
    jobs: list[Job],
    config: Mapping[str, Any],
    *,
    repo: Path = REPO,
    calibration: Mapping[str, Any] | None = None,
    use_benchmarks: bool = True,
) -> list[Estimate]:
    """One estimate per job, from the first source that has it (see the module docstring)."""
    own = measured(jobs, repo) if use_benchmarks else {}
    by_kind: dict[tuple[str, str], list[Estimate]] = defaultdict(list)
    by_rule: dict[str, list[Estimate]] = defaultdict(list)
    for i, est in own.items():
        by_kind[(jobs[i].rule, jobs[i].kind())].append(est)
        by_rule[jobs[i].rule].append(est)
    fits = (calibration or {}).get("fits", {})
    startup = float((calibration or {}).get("startup_s", DEFAULT_STARTUP_S))
    out = []
    for i, job in enumerate(jobs):
        if i in own:
            out.append(own[i])
            continue
        key = (job.rule, job.kind())
        if by_kind.get(key):
            out.append(_group_mean(by_kind[key], "measured (rule)"))
            continue
        fit = fits.get(f"{job.rule}|{job.kind()}") or fits.get(f"{job.rule}|")
        if fit is not None:
            units = work_units(config, job)
            if fit.get("rate") is not None and job.rule in SEED_RULES:
                seconds = seed_fit_seconds(
                    fit, len(config["fhn"]["seeds"]), _fhn_epochs(config, job)
                )
            elif fit.get("slope") is not None and units is not None:
                seconds = fit["intercept"] + fit["slope"] * units
            else:
                seconds = fit["mean"]
            out.append(
                Estimate(max(seconds, 0.0), fit.get("max_rss"), fit.get("io_out"), "calibrated")
            )
            continue
        if by_rule.get(job.rule):
            out.append(_group_mean(by_rule[job.rule], "measured (rule)"))
            continue
        if job.benchmark:
            # an expensive rule (it has a benchmark) that nothing measured: do not guess
            out.append(Estimate(math.nan, None, None, "unknown"))
            continue
        out.append(Estimate(startup, None, None, "assumed"))
    return out


@dataclass
class StageRow:
    stage: str
    jobs: int = 0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    wall_hours_serial: float = 0.0
    max_job_hours: float = 0.0
    peak_mem_mb: float = 0.0
    disk_mb: float = 0.0
    sources: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def summarise(
    jobs: list[Job], estimates: list[Estimate], config: Mapping[str, Any], stages: Mapping[str, str]
) -> tuple[dict[str, StageRow], dict[str, dict[str, Any]]]:
    """Per-stage totals and per-rule rows."""
    rows: dict[str, StageRow] = {}
    rules: dict[str, dict[str, Any]] = {}
    for job, est in zip(jobs, estimates, strict=True):
        stage = stages.get(job.rule, "other")
        if math.isnan(est.seconds):
            rows.setdefault(stage, StageRow(stage)).sources["unknown"] += 1
            r = rules.setdefault(
                job.rule,
                {"stage": stage, "jobs": 0, "seconds": [], "sources": defaultdict(int), "rss": 0.0},
            )
            r["jobs"] += 1
            r["sources"]["unknown"] += 1
            rows[stage].jobs += 1
            continue
        row = rows.setdefault(stage, StageRow(stage))
        gpus = float(job.resources.get("gpu", 0) or 0)
        row.jobs += 1
        row.cpu_hours += est.seconds * job.threads / 3600
        row.gpu_hours += est.seconds * gpus / 3600
        row.wall_hours_serial += est.seconds / 3600
        row.max_job_hours = max(row.max_job_hours, est.seconds / 3600)
        row.peak_mem_mb = max(row.peak_mem_mb, est.max_rss_mb or 0.0)
        row.disk_mb += est.io_out_mb or 0.0
        row.sources[est.source] += 1
        r = rules.setdefault(
            job.rule,
            {"stage": stage, "jobs": 0, "seconds": [], "sources": defaultdict(int), "rss": 0.0},
        )
        r["jobs"] += 1
        r["seconds"].append(est.seconds)
        r["sources"][est.source] += 1
        r["rss"] = max(r["rss"], est.max_rss_mb or 0.0)
    return rows, rules


def format_plan(
    run: str, rows: Mapping[str, StageRow], rules: Mapping[str, Mapping[str, Any]]
) -> str:
    lines = [f"Plan of run '{run}' (every job, as if from empty results)", ""]
    head = f"{'rule':<24}{'stage':<18}{'jobs':>6}{'s/job (mean)':>14}{'s/job (max)':>13}{'peak MB':>9}  source"
    lines.append(head)
    lines.append("-" * len(head))
    for name, r in sorted(rules.items(), key=lambda kv: (kv[1]["stage"], kv[0])):
        src = ", ".join(f"{k} {v}" for k, v in sorted(r["sources"].items()))
        secs = r["seconds"]
        mean = f"{statistics.fmean(secs):>14.1f}" if secs else f"{'?':>14}"
        top = f"{max(secs):>13.1f}" if secs else f"{'?':>13}"
        lines.append(f"{name:<24}{r['stage']:<18}{r['jobs']:>6}{mean}{top}{r['rss']:>9.0f}  {src}")
    lines += [
        "",
        f"{'stage':<18}{'jobs':>6}{'CPU-h':>9}{'GPU-h':>9}{'longest job h':>15}{'peak MB':>9}{'written GB':>12}",
    ]
    total = StageRow("total")
    for name in sorted(rows):
        s = rows[name]
        lines.append(
            f"{name:<18}{s.jobs:>6}{s.cpu_hours:>9.2f}{s.gpu_hours:>9.2f}{s.max_job_hours:>15.3f}"
            f"{s.peak_mem_mb:>9.0f}{s.disk_mb / 1024:>12.2f}"
        )
        total.jobs += s.jobs
        total.cpu_hours += s.cpu_hours
        total.gpu_hours += s.gpu_hours
        total.max_job_hours = max(total.max_job_hours, s.max_job_hours)
        total.peak_mem_mb = max(total.peak_mem_mb, s.peak_mem_mb)
        total.disk_mb += s.disk_mb
    lines.append(
        f"{'total':<18}{total.jobs:>6}{total.cpu_hours:>9.2f}{total.gpu_hours:>9.2f}"
        f"{total.max_job_hours:>15.3f}{total.peak_mem_mb:>9.0f}{total.disk_mb / 1024:>12.2f}"
    )
    unknown = sum(s.sources.get("unknown", 0) for s in rows.values())
    if unknown:
        lines.append(
            f"INCOMPLETE: {unknown} job(s) of benchmarked rules have no measurement or "
            "calibration and are left out of the totals."
        )
    lines += [
        "",
        "CPU-h: seconds x threads. GPU-h: the allocation asked for (seconds x gpu) where a stage's",
        "resources request a GPU, from CPU-measured seconds. 'written GB': bytes each job writes",
        "(results, snapshots, checkpoints; Snakemake's io_out), not what stays on disk.",
        "Sources: measured = the job's own benchmark file; measured (rule) = mean of measured jobs",
        "of the same rule and kind; calibrated = make calibrate, extrapolated to the full training",
        "length; assumed = a process start-up only (rules without benchmark files);",
        "unknown = a benchmarked rule nothing has measured yet (left out of the totals).",
    ]
    return "\n".join(lines)


# ---- calibration -----------------------------------------------------------------------------


def calibration_path(config: Mapping[str, Any], repo: Path = REPO) -> Path:
    return repo / config["logs_root"] / config["run"] / "plan" / CALIBRATION_NAME


def calibration_overlay(config: Mapping[str, Any], scratch: Path, size: int) -> dict[str, Any]:
    """The config's DAG reduced to one cell per kind, its variable work set by ``size`` (1, 2).

    Data sizes, models, optimizers and widths stay the config's; what shrinks is the number of
    cells (first seed, first learning rate, the focus condition; at size 2 every FHN seed) and
    each job's work units (work_units): training epochs or steps, SLQ products, landscape grid
    points.
    """
    fhn = config["fhn"]
    eos = config["eos"]
    optimizers = []
    for entry in eos["optimizers"]:
        e = dict(entry)
        e["lrs"] = [entry["lrs"][0]]
        if "seeds" in e:
            e["seeds"] = [e["seeds"][0]]
        if "steps" in e:
            # the entry's evaluation periods, else the eos section's (a step count, not "epoch")
            periods = (e.get(k, eos.get(k)) for k in ("eig_every", "eval_every"))
            every = [v for v in periods if isinstance(v, int)]
            unit = max(every) if every else 1
            e["steps"] = unit * size
            if isinstance(e.get("checkpoint_every"), int):
                e["checkpoint_every"] = min(e["checkpoint_every"], e["steps"])
        else:
            e["epochs"] = size
        optimizers.append(e)
    # one condition: the focus condition where the config has it (the analysis needs it)
    focus = fhn.get("analysis", {}).get("focus_condition")
    cond = next((c for c in fhn["conditions"] if c["name"] == focus), fhn["conditions"][0])
    train = fhn["train"]
    # two evaluation periods: the first is warm-up, the second gives the steady rate (loop_split)
    epochs = 2 * size * int(train.get("eval_every") or 1)
    overrides = {
        m: _epochs_overlay({"train": o}, epochs)["train"]
        for m, o in train.get("overrides", {}).items()
        if _epochs_overlay({"train": o}, epochs)
    }
    # the full horizon from the first epoch: the curriculum's short early horizons (cheaper
    # epochs) are a small part of a full run (horizon_ramp_epochs of the epoch bound)
    fhn_train: dict[str, Any] = {"epochs": epochs, "horizon_ramp_epochs": 0}
    if overrides:
        fhn_train["overrides"] = overrides
    if train.get("system_overrides"):
        fhn_train["system_overrides"] = {
            system: _epochs_overlay(over, epochs)
            for system, over in train["system_overrides"].items()
        }
    spectrum = eos["spectrum"]
    overlay: dict[str, Any] = {
        "run": "calibration",
        "results_root": str(scratch / "results"),
        "logs_root": str(scratch / "logs"),
        # random files of the official shape (make_fake_medmnist): their MD5 is not the official one
        "data": {"root": str(scratch / "data"), "medmnist_md5": "skip"},
        "fhn": {
            # size 2 trains the cells with all their seeds, batched as in the real jobs: the
            # cell's cost is measured, not extrapolated (seed_fit)
            "seeds": list(fhn["seeds"][:1] if size == 1 else fhn["seeds"]),
            "conditions": [cond],
            "system_conditions": {system: [cond["name"]] for system in fhn["systems"]},
            "analysis": {
                "focus_condition": cond["name"],
                "regular_condition": cond["name"],
            },
            "train": fhn_train,
            # fewer rollouts of the same length: one batch either way, less to simulate
            "dataset": {"rollout_n": 2},
        },
        "eos": {
            "seeds": [eos["seeds"][0]],
            "optimizers": optimizers,
            "n_snapshots": min(eos["n_snapshots"], 2 * size + 1),
            "spectrum": {
                "n_vectors": 1,
                "n_iter": min(int(spectrum["n_iter"]), 20 * size),
                "trace_matvecs": min(int(spectrum["trace_matvecs"]), 12 * size),  # Hutch++: >= 5
            },
            "landscape": {"grid": min(int(eos["landscape"]["grid"]), 8 * size)},
        },
        "paper": {"build_pdf": False},
    }
    if config.get("systems", {}).get("ode_solver"):
        # one start per seed; the trial-solution fits keep the config's settings (their time is
        # not proportional to the optimiser's iterations: L-BFGS stops when it converges)
        overlay.setdefault("systems", {})["ode_solver"] = {"a1_reference": {"n_starts": 1}}
    landau = config.get("systems", {}).get("landau")
    if landau:
        # 1 and 6 epochs (2 and 7 frames): a slope that stands above the timing noise
        boundary = {"epochs": 5 * size - 4, "frame_every": 1}
        overlay.setdefault("systems", {})["landau"] = {
            "seeds": [landau["seeds"][0]],
            "train": {"epochs": size},
            "boundary": boundary,
        }
    return overlay


def _epochs_overlay(over: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    """A per-system (or per-model) FHN override with every epoch bound it sets replaced by
    ``epochs`` and every curriculum ramp it sets by 0."""
    calib = {"epochs": epochs, "horizon_ramp_epochs": 0}

    def shrink(o: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in calib.items() if k in o}

    out: dict[str, Any] = {}
    if shrink(over.get("train", {})):
        out["train"] = shrink(over["train"])
    models = {m: shrink(o) for m, o in over.get("overrides", {}).items() if shrink(o)}
    if models:
        out["overrides"] = models
    return out


# Rules whose time grows with the work units the calibration varies between its two passes.
LENGTH_RULES = (
    "fhn_train",
    "eos_train",
    "eos_spectrum",
    "eos_landscape",
    "systems_landau_train",
    "systems_landau_boundary",
)


def steady_loop_seconds(rec: Mapping[str, Any], steps: float) -> float | None:
    """The loop time a run record implies for ``steps`` steps at its steady rate, or None.

    The record's ``loop_marks`` are (step, loop seconds) after its evaluations. The time before
    the first evaluation after step 0 (or, with only two marks, before the step-0 evaluation)
    is warm-up that a long run pays once: the first evaluation, a cold first sharpness estimate,
    first-call allocations. Only the time after it counts towards the per-step rate.
    """
    marks = rec.get("loop_marks") or []
    if len(marks) < 2:
        return None
    first = marks[1] if len(marks) >= 3 else marks[0]
    last = marks[-1]
    dsteps, dsec = float(last[0]) - float(first[0]), float(last[1]) - float(first[1])
    if dsteps <= 0 or dsec < 0:
        return None
    return dsec / dsteps * steps


def loop_split(
    job: Job, repo: Path = REPO, units: float | None = None
) -> tuple[float, float] | None:
    """(seconds of the training loop at its steady rate, work units done) of a finished training
    job, read from its run.json files (one per seed for FHN training), or None.

    The benchmark file gives a job's whole time; the run records say how fast the loop ran once
    warm (steady_loop_seconds), so the per-unit cost is measured apart from everything a job
    pays once (start-up, data, the loop's first period, the final evaluation), in one run and
    free of the start-up's noise. Records without time marks fall back to the loop's whole time.
    Spectra and landscapes record the seconds of their products or grid (``work_seconds`` in
    their JSON sidecar), split against ``units`` (work_units).
    """
    if job.rule in WORK_TIMED_RULES:
        meta = [o for o in job.output if o.endswith(".json")]
        try:
            seconds = float(json.loads((repo / meta[0]).read_text())["work_seconds"])
        except (IndexError, OSError, ValueError, KeyError, TypeError):
            return None
        return (seconds, float(units)) if units else None
    runs = [repo / o for o in job.output if o.endswith("run.json")]
    if not runs and job.output:
        runs = [(repo / job.output[0]).parent / "run.json"]
    seconds = units = 0.0
    for path in runs:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if job.rule == "fhn_train":
            if rec.get("baseline"):
                return 0.0, 1.0  # nothing is trained: the whole job is a fixed cost
            if rec.get("reused"):
                return None  # trained by an earlier job: its time is not in this job's
            done = float(rec["stopped_epoch"])
            steps = float(rec.get("steps_done") or done)
            if rec.get("batched"):
                # the cell's loop, counted once (every seed's record carries the same marks)
                if path != runs[0]:
                    units += done
                    continue
                whole = float(rec["batched_wall_seconds"])
                marks = rec.get("loop_marks") or []
                steps = float(marks[-1][0]) if marks else steps  # the cell's steps
            else:
                whole = float(rec["wall_seconds"])
        elif job.rule == "eos_train":
            steps = float(rec["steps_done"])
            done = steps if rec.get("full_batch") else steps / float(rec["steps_per_epoch"])
            whole = float(rec["wall_seconds"])
        else:
            return None
        steady = steady_loop_seconds(rec, steps)
        seconds += whole if steady is None else min(steady, whole)
        units += done
    return (seconds, units) if units > 0 else None


# Rules whose outputs time the part of the job that grows with its units (loop_split):
# measured at one size. Training loops mark their evaluations; the others time their work.
WORK_TIMED_RULES = ("eos_spectrum", "eos_landscape")
SPLIT_RULES = ("fhn_train", "eos_train", *WORK_TIMED_RULES)


# Rules whose jobs train every seed of a cell at once: their cost per epoch depends on the
# number of seeds (batched, less than in proportion), measured with one seed and with two.
SEED_RULES = ("fhn_train",)


def _runs_twice(job: Job) -> bool:
    """Jobs measured at both sizes: those whose fixed and per-unit costs are not split by
    their own records (a second size, twice the work, separates them), and the seed rules."""
    return job.rule in SEED_RULES or (job.rule in LENGTH_RULES and job.rule not in SPLIT_RULES)


def seed_fit(points: list[tuple[float, float, float, float]]) -> dict[str, Any] | None:
    """A cell's cost against its number of seeds S, from (S, job seconds, loop seconds, seed-epochs)
    records at two or more seed counts: loop seconds per epoch ``rate + rate_per_seed * (S - 1)``
    and the rest ``intercept + intercept_per_seed * (S - 1)``, each the least-squares line through
    the records (negative slopes, from timing noise, clipped to 0). None with one seed count."""
    if len({p[0] for p in points}) < 2:
        return None

    def line(xs: list[float], ys: list[float]) -> tuple[float, float]:
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        slope = max(slope / sum((x - mx) ** 2 for x in xs), 0.0)
        return my - slope * (mx - 1.0), slope

    xs = [float(n) for n, _, _, _ in points]
    # the cell's epochs: every seed of a calibration cell trains the same number of them
    rates = [loop * n / units if units else 0.0 for n, _, loop, units in points]
    fixed = [max(total - loop, 0.0) for _, total, loop, _ in points]
    rate, rate_per_seed = line(xs, rates)
    intercept, intercept_per_seed = line(xs, fixed)
    return {
        "rate": rate,
        "rate_per_seed": rate_per_seed,
        "intercept": intercept,
        "intercept_per_seed": intercept_per_seed,
        "seed_points": [list(p) for p in points],
    }


def seed_fit_seconds(fit: Mapping[str, Any], seeds: int, epochs: float) -> float:
    """A cell's job seconds at ``seeds`` seeds and ``epochs`` epochs from its seed_fit."""
    extra = max(seeds - 1, 0)
    rate = fit["rate"] + fit["rate_per_seed"] * extra
    return fit["intercept"] + fit["intercept_per_seed"] * extra + rate * epochs


def missing_offline_data(config: Mapping[str, Any], repo: Path = REPO) -> dict[str, str]:
    """Download rules the calibration omits (with every job downstream of them): rule -> why."""
    from otgap.data.mnist import MNIST_FILES

    out = {}
    landau = config.get("systems", {}).get("landau", {})
    if landau.get("dataset") == "mnist":
        root = Path(config["data"]["root"])
        root = root if root.is_absolute() else repo / root
        missing = [n for n in MNIST_FILES if not (root / "mnist" / n).is_file()]
        if missing:
            why = f"MNIST files missing in {root / 'mnist'} (snakemake mnist_download fetches them)"
            # the download rule is omitted, and with it every job downstream of it
            out["mnist_download"] = why
    return out


def make_fake_medmnist(config: Mapping[str, Any], data_root: Path) -> list[str]:
    """Random MedMNIST files of the official shape, so EoS jobs run offline at the real size."""
    import medmnist
    import numpy as np

    made = []
    size = config["eos"].get("size", 28)
    rng = np.random.default_rng(0)
    for flag in config["eos"]["datasets"]:
        if flag not in medmnist.INFO:
            continue
        info = medmnist.INFO[flag]
        channels = info["n_channels"]
        n_classes = len(info["label"])
        arrays = {}
        for split in ("train", "val", "test"):
            n = info["n_samples"][split]
            shape = (n, size, size) if channels == 1 else (n, size, size, channels)
            arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
            arrays[f"{split}_labels"] = rng.integers(0, n_classes, size=(n, 1), dtype=np.uint8)
        name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
        dest = data_root / "medmnist" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.savez(dest, **arrays)
        made.append(flag)
    return made


def _link_real_data(config: Mapping[str, Any], data_root: Path, repo: Path) -> None:
    """Data the calibration cannot fake (MNIST) is used from the config's own data root."""
    root = Path(config["data"]["root"])
    root = root if root.is_absolute() else repo / root
    for name in ("mnist",):
        if (root / name).is_dir() and not (data_root / name).exists():
            data_root.mkdir(parents=True, exist_ok=True)
            (data_root / name).symlink_to(root / name, target_is_directory=True)


def _startup_seconds() -> float:
    """Wall time of a fresh interpreter importing torch and the training code (a job's floor)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import torch, otgap.train.loop, otgap.train.provenance"],
        check=True,
    )
    return time.perf_counter() - t0


def _fit(
    points: list[tuple[float, Estimate]], startup: float = DEFAULT_STARTUP_S
) -> dict[str, Any]:
    """seconds = intercept + slope * units, by least squares over two or more sizes.

    With a single size the intercept is the process start-up and the slope carries the rest,
    so the estimate grows in proportion to the work beyond start-up.
    """
    lengths = sorted({length for length, _ in points})
    rss = [e.max_rss_mb for _, e in points if e.max_rss_mb is not None]
    io = [e.io_out_mb for _, e in points if e.io_out_mb is not None]
    mean = statistics.fmean(e.seconds for _, e in points)
    fit: dict[str, Any] = {
        "mean": mean,
        "max_rss": max(rss) if rss else None,
        "io_out": max(io) if io else None,
        "slope": None,
        "intercept": None,
        "points": [[length, e.seconds] for length, e in points],
    }
    if len(lengths) >= 2:
        xs = [length for length, _ in points]
        ys = [e.seconds for _, e in points]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        fit["slope"] = max(slope, 0.0)
        fit["intercept"] = my - fit["slope"] * mx
    elif lengths and lengths[0] > 0:
        fit["intercept"] = min(startup, mean)
        fit["slope"] = (mean - fit["intercept"]) / lengths[0]
    return fit


def _split_fit(split: list[tuple[float, float, float]]) -> dict[str, Any]:
    """Intercept and slope from (job seconds, loop seconds, units) records (loop_split)."""
    slope = sum(loop for _, loop, _ in split) / sum(units for _, _, units in split)
    intercept = statistics.fmean(max(total - loop, 0.0) for total, loop, _ in split)
    return {"slope": slope, "intercept": intercept, "split": [list(r) for r in split]}


def _snakemake_run(cmd: list[str], repo: Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=_dry_env())
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise PlanError(f"calibration run failed ({what}):\n{tail}")


def calibrate(
    configfiles: list[str],
    *,
    repo: Path = REPO,
    cores: int = 2,
    log=print,
) -> Path:
    """Run the reduced DAG (calibration_overlay) at size 1, rerun at size 2 the FHN cells (with
    all their seeds) and the jobs that do not split their own time, and cache per-(rule, kind)
    fits of seconds against work units (and, for FHN cells, against their seeds)."""
    config = load_config(configfiles, repo)
    scratch = repo / config["results_root"] / config["run"] / ".plan-calibration"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    t_start = time.perf_counter()
    made = make_fake_medmnist(config, scratch / "data")
    if made:
        log(f"calibration: random MedMNIST-shaped files for {made} (official shapes, offline)")
    skipped = missing_offline_data(config, repo)
    for rule, why in skipped.items():
        log(f"calibration: {rule} and the jobs that need its files are left out: {why}")
    _link_real_data(config, scratch / "data", repo)
    startup = _startup_seconds()
    points: dict[str, list[tuple[float, Estimate]]] = defaultdict(list)
    splits: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    seeded: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    first: list[Job] = []
    targets = ["fhn_all", "eos_all"]
    if config.get("systems"):
        targets.append("systems_all")
    for size in (1, 2):
        overlay = calibration_overlay(config, scratch, size)
        over_path = scratch / f"overlay-{size}.yaml"
        over_path.write_text(yaml.safe_dump(overlay, sort_keys=True))
        files = [*configfiles, str(over_path)]
        extra: list[str] = ["--rerun-triggers", "mtime"]
        if skipped:
            extra += ["--omit-from", *sorted(skipped)]
        run_targets = targets
        if size == 2:
            # only the jobs whose work the size changes run again, named by their outputs
            again = [j for j in first if _runs_twice(j) and j.rule not in skipped]
            run_targets = sorted({o for j in again for o in j.output[:1]})
            if not run_targets:
                break
            extra += ["--forcerun", *run_targets]
        # targets first: a target after --configfile would be read as a config file
        cmd = [
            *snakemake_cmd(repo),
            *run_targets,
            "--profile",
            "profiles/default",
            "--cores",
            str(cores),
            *extra,
            "--configfile",
            *files,
        ]
        listing = dry_run(files, repo=repo, extra=[*run_targets, *extra], force=size == 1)
        jobs = parse_jobs(listing)
        if size == 1:
            first = jobs
        shown: list[str] = []
        for arg in cmd:  # the second pass's targets are many paths: name how many, not each
            if arg not in run_targets or size == 1:
                shown.append(arg)
            elif not shown[-1].startswith("<"):
                shown.append(f"<{len(run_targets)} outputs of size 1>")
        log(f"calibration: size {size}: {len(jobs)} jobs: {' '.join(shown)}")
        t0 = time.perf_counter()
        _snakemake_run(cmd, repo, f"size {size}")
        log(f"calibration: size {size} took {time.perf_counter() - t0:.0f} s")
        sub_config = load_config(files, repo)
        for job in jobs:
            if not job.benchmark:
                continue
            est = read_benchmark(repo / job.benchmark)
            if est is None:
                continue
            units = work_units(sub_config, job)
            units = 0.0 if units is None else units
            points[f"{job.rule}|{job.kind()}"].append((units, est))
            points[f"{job.rule}|"].append((units, est))
            split = loop_split(job, repo, units) if job.rule in SPLIT_RULES else None
            if split is not None and job.rule in SEED_RULES:
                n_seeds = float(len(sub_config["fhn"]["seeds"]))
                seeded[f"{job.rule}|{job.kind()}"].append((n_seeds, est.seconds, *split))
                seeded[f"{job.rule}|"].append((n_seeds, est.seconds, *split))
            if split is not None:
                splits[f"{job.rule}|{job.kind()}"].append((est.seconds, *split))
                splits[f"{job.rule}|"].append((est.seconds, *split))
    fits = {}
    for key, pts in points.items():
        has_units = any(p[0] for p in pts)
        fits[key] = (
            _fit(pts, startup) if has_units else _fit([(0.0, e) for _, e in pts]) | {"slope": None}
        )
        if splits.get(key):
            fits[key].update(_split_fit(splits[key]))
        by_seeds = seed_fit(seeded.get(key, []))
        if by_seeds is not None:
            fits[key].update(by_seeds)
    out = calibration_path(config, repo)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "configfiles": configfiles,
        "run": config["run"],
        "sizes": [1, 2],
        "startup_s": startup,
        "seconds": time.perf_counter() - t_start,
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform, "cores_used": cores},
        "left_out": skipped,
        "fits": fits,
    }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    tmp.replace(out)
    shutil.rmtree(scratch, ignore_errors=True)
    log(f"calibration: {len(fits)} fits in {payload['seconds']:.0f} s -> {out}")
    return out


# ---- command line ----------------------------------------------------------------------------


def plan(
    configfiles: list[str],
    *,
    repo: Path = REPO,
    use_benchmarks: bool = True,
    use_calibration: bool = True,
) -> tuple[str, dict[str, StageRow], list[Job], list[Estimate]]:
    config = load_config(configfiles, repo)
    calib = None
    cpath = calibration_path(config, repo)
    if use_calibration and cpath.exists():
        calib = json.loads(cpath.read_text())
    jobs = parse_jobs(dry_run(configfiles, repo=repo))
    estimates = estimate_jobs(
        jobs, config, repo=repo, calibration=calib, use_benchmarks=use_benchmarks
    )
    rows, rules = summarise(jobs, estimates, config, rule_stages(repo))
    text = format_plan(config["run"], rows, rules)
    if calib is None:
        text += (
            f"\nNo calibration cache ({cpath}): jobs without benchmark files count a start-up only."
            f"\nRun `make calibrate` (or python -m otgap.plan calibrate --configfile ...) first."
        )
    else:
        text += f"\nCalibration: {cpath} ({calib['seconds']:.0f} s, sizes {calib.get('sizes')})."
        seeded = len(config["fhn"]["seeds"]) == 1 or any(
            "rate" in f for k, f in calib.get("fits", {}).items() if k.startswith("fhn_train|")
        )
        text += (
            "\nCalibrated FHN training: each cell trained with one seed and with all its seeds"
            "\n(batched, as the jobs run), at the full horizon."
            if seeded
            else "\nCalibrated FHN training: one seed, scaled by the number of seeds (an older"
            "\ncache: rerun make calibrate to measure the batched cells)."
        ) + " Epoch bounds count in full: early stopping can only shorten them."
        for rule, why in sorted(calib.get("left_out", {}).items()):
            text += f"\nNot calibrated: {rule} and the jobs downstream of it: {why}."
    return text, rows, jobs, estimates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m otgap.plan", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", nargs="?", choices=["plan", "calibrate"], default="plan")
    parser.add_argument(
        "--configfile", nargs="*", default=[], help="overlays on config/config.yaml"
    )
    parser.add_argument(
        "--no-benchmarks", action="store_true", help="ignore earlier benchmark files"
    )
    parser.add_argument("--cores", type=int, default=2, help="cores for the calibration run")
    args = parser.parse_args(argv)
    from otgap.config import ConfigError

    # config/config.yaml is always the base; naming it again changes nothing
    configfiles = [c for c in args.configfile if Path(c).resolve() != REPO / "config/config.yaml"]
    try:
        if args.action == "calibrate":
            calibrate(configfiles, cores=args.cores)
            return 0
        text, *_ = plan(configfiles, use_benchmarks=not args.no_benchmarks)
    except ConfigError as exc:  # bad input: one message naming the key or the file
        print(f"otgap.plan: {exc}", file=sys.stderr)
        return 2
    except PlanError as exc:
        print(f"otgap.plan: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
