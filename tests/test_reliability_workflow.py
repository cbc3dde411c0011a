"""Reliability of the workflow itself, with dry runs: every bad value is rejected at
start-up with its key path (and file and line for YAML), fast; touching sources plans nothing and
a comment in a script plans exactly its rule's jobs and what follows; result files are readable
by group and others; an unreadable input set aside is rebuilt.

The rerun tests work on a small run of their own (the FitzHugh-Nagumo data stage of one seed, in a
copy of the repository) so they do not need the quick run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .conftest import QUICK, REPO, job_counts, snakemake

pytestmark = pytest.mark.e2e

# ---- every bad value rejected at start-up, naming the key ---------------------------------------

BAD_VALUES = {
    "adam_beta1": (
        {"eos": {"optimizers": [{"name": "adam", "lrs": [1e-3], "batch_size": 64, "epochs": 1,
                                 "hyper": {"beta1": 1.5}}]}},
        ["eos.optimizers[0].hyper", "beta"],
    ),
    "activation_typo": (
        {"eos": {"model_hyper": {"mlp": {"hidden": [20], "activation": "tanhh"}}}},
        ["eos.model_hyper.mlp", "tanhh"],
    ),
    "zero_width": (
        {"eos": {"model_hyper": {"mlp": {"hidden": [0]}}}},
        ["eos.model_hyper.mlp", "hidden"],
    ),
    "float_seed": ({"fhn": {"seeds": [1.0]}}, ["fhn.seeds[0]", "integer"]),
    "infinite_lr": (
        {"eos": {"optimizers": [{"name": "sgd", "lrs": [float("inf")], "batch_size": 64,
                                 "epochs": 1}]}},
        ["eos.optimizers[0].lrs[0]", "finite"],
    ),
    "fhn_model_kwargs": (
        {"fhn": {"train": {"model_kwargs": {"neural_ode": {"n_sub": 0}}}}},
        ["fhn.train.model_kwargs.neural_ode", "neural_ode"],
    ),
}  # fmt: skip


def _time_limit(seconds: float = 10.0) -> float:
    """``seconds`` on an idle machine, scaled by the load average when other work shares the CPUs."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * max(1.0, load)


def _rejected(proc: subprocess.CompletedProcess, elapsed: float, *needles: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "Job stats" not in out and "Building DAG" not in out
    for needle in needles:
        assert needle in out, (needle, out[-2000:])
    assert elapsed < _time_limit(), f"rejection took {elapsed:.1f} s"
    return out


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_value_is_rejected_before_any_job_with_its_key(tmp_path, case):
    overlay, needles = BAD_VALUES[case]
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump({"results_root": str(tmp_path / "results"), **overlay}))
    t0 = time.perf_counter()
    proc = snakemake("-n", *QUICK, str(path))
    _rejected(proc, time.perf_counter() - t0, *needles)


def test_duplicate_key_in_an_overlay_names_file_and_line(tmp_path):
    path = tmp_path / "overlay.yaml"
    path.write_text("fhn:\n  seeds: [0]\neos:\n  seeds: [0]\nfhn:\n  models: [tlstm]\n")
    t0 = time.perf_counter()
    proc = snakemake("-n", *QUICK, str(path))
    _rejected(proc, time.perf_counter() - t0, str(path), "line 5", "duplicate key 'fhn'")


def test_syntax_error_in_the_main_config_names_file_and_line(tmp_path):
    """Snakemake's own reader would say only 'not valid JSON or YAML'; the Snakefile reads the
    main config strictly first. (A syntax error in a --configfile overlay is read by Snakemake's
    command line before any workflow code runs: `python -m otgap.config FILE...` names the line.)
    """
    repo = tmp_path / "repo"
    for name in ("workflow", "config", "profiles"):
        shutil.copytree(REPO / name, repo / name)
    (repo / "scripts").symlink_to(REPO / "scripts")
    (repo / "src").symlink_to(REPO / "src")
    cfg = repo / "config" / "config.yaml"
    lines = cfg.read_text().splitlines()
    lines.insert(3, "broken: [1, 2")
    cfg.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    proc = snakemake("-n", cwd=repo)
    out = _rejected(proc, time.perf_counter() - t0, "config file config/config.yaml, line ")
    line = int(out.split("config/config.yaml, line ")[1].split(",")[0])
    assert line >= 4  # where the parser noticed: at or after the broken line


def test_config_command_names_file_and_line_of_an_overlay(tmp_path):
    import sys

    path = tmp_path / "overlay.yaml"
    path.write_text("fhn:\n  train:\n    lr: [0.1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "otgap.config", "config/config.yaml", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and f"{path}, line 4" in proc.stderr, proc.stderr


# ---- content-based code triggers, file modes, rebuild of unreadable inputs ------------------------

SMALL = {"fhn": {"seeds": [0], "lyapunov": {"t_total": 200.0, "dt": 0.05}}}
DATASET = "results/quick/data/fhn/system=fhn/condition=jitter/seed=0/dataset.npz"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A copy of the repository with the Lyapunov and one dataset job of the quick config run."""
    repo = tmp_path_factory.mktemp("small") / "repo"
    for name in ("workflow", "scripts", "src", "config", "profiles"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "small.yaml").write_text(yaml.safe_dump(SMALL))
    proc = snakemake(DATASET, *QUICK, "small.yaml", cwd=repo)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return repo


@pytest.fixture
def repo(small_run, tmp_path) -> Path:
    """A throw-away copy of the small run (results hard-linked, metadata copied)."""
    dst = tmp_path / "repo"
    shutil.copytree(small_run, dst, symlinks=True, copy_function=os.link, ignore=_skip_meta)
    shutil.copytree(small_run / ".snakemake" / "metadata", dst / ".snakemake" / "metadata")
    for folder in ("workflow", "scripts", "src"):  # sources are edited: real copies
        shutil.rmtree(dst / folder)
        shutil.copytree(small_run / folder, dst / folder, copy_function=shutil.copy2)
    return dst


def _skip_meta(folder, names):
    return [n for n in names if n in (".snakemake", "__pycache__")]


def plan(repo: Path) -> dict[str, int]:
    proc = snakemake("-n", DATASET, *QUICK, "small.yaml", cwd=repo)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return job_counts(proc.stdout + proc.stderr)


def test_touching_every_source_file_plans_nothing(repo):
    later = time.time() + 60
    for folder in ("scripts", "src", "workflow"):
        for f in (repo / folder).rglob("*"):
            if f.is_file():
                os.utime(f, (later, later))
    assert plan(repo) == {}


def test_a_comment_in_a_script_plans_exactly_its_jobs_and_what_follows(repo):
    with open(repo / "scripts" / "fhn_data.py", "a") as fh:
        fh.write("\n# a comment\n")
    assert plan(repo) == {"fhn_dataset": 1}
    with open(repo / "scripts" / "fhn_lyapunov.py", "a") as fh:
        fh.write("\n# a comment\n")
    assert plan(repo) == {"fhn_lyapunov": 1, "fhn_dataset": 1}


def test_a_comment_in_a_module_plans_the_jobs_that_import_it(repo):
    with open(repo / "src" / "otgap" / "data" / "masks.py", "a") as fh:
        fh.write("\n# a comment\n")
    assert plan(repo) == {"fhn_dataset": 1}


def test_result_files_are_readable_by_everyone(small_run):
    """`find results -type f ! -perm -u=r,g=r,o=r` is empty (under the usual umask 022)."""
    files = [f for f in (small_run / "results").rglob("*") if f.is_file()]
    assert files
    for f in files:
        assert f.stat().st_mode & 0o444 == 0o444, oct(f.stat().st_mode)


def test_an_unreadable_input_set_aside_is_rebuilt(repo):
    from otgap.io import UnreadableInput
    from otgap.jobs import set_aside_unreadable

    bad = repo / DATASET
    data = bad.read_bytes()
    bad.unlink()  # a hard link to the small run's file: replace it, do not truncate it
    bad.write_bytes(data[: len(data) // 3])
    message = set_aside_unreadable(UnreadableInput(bad, "truncated"), [str(bad)])
    assert "moved the unreadable input" in message and not bad.exists()
    assert plan(repo) == {"fhn_dataset": 1}
