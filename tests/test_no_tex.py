"""A machine without TeX: every dry run, the plan and every job before the paper work; only the
PDF needs TeX, and a run that is to build it says so before its first job.

The TeX programs are hidden from PATH (tests/_notex.py: links to every other program), so these
tests mean the same on a machine with TeX installed. .ci/run runs them once more with the whole
pytest process on that PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from otgap.paper.build import PaperBuildError, plan_build, require_tex

from ._notex import path_without_tex
from .conftest import REPO, job_counts

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.fixture(scope="module")
def no_tex_env(tmp_path_factory) -> dict[str, str]:
    path = path_without_tex(tmp_path_factory.mktemp("notex"))
    env = {k: v for k, v in os.environ.items() if k != "OTGAP_REQUIRE_TEX"}
    env["PATH"] = path
    return env


def _snakemake(env, *args, timeout=600):
    return subprocess.run(
        [SNAKEMAKE, "-s", "workflow/Snakefile", "--cores", "2", *args],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip


def _roots(tmp: Path) -> list[str]:
    return ["--config", f"results_root={tmp}/results", f"logs_root={tmp}/logs"]


def test_path_hides_tex_and_nothing_else(no_tex_env):
    for tex in ("latexmk", "pdflatex", "bibtex"):
        assert shutil.which(tex, path=no_tex_env["PATH"]) is None
    for other in ("sh", "env", Path(sys.executable).name):
        assert shutil.which(other, path=no_tex_env["PATH"]) is not None, other


def _which(found: bool):
    return lambda program: f"/usr/bin/{program}" if found else None


def test_plan_build_never_raises_for_missing_tex():
    # auto without TeX: the PDF is left out, with one line saying how to get it
    build, note = plan_build("auto", {}, _which(False))
    assert build is False and "apt-get install" in note
    # required (true, or auto with OTGAP_REQUIRE_TEX=1): planned; the job checks TeX
    for mode, env in ((True, {}), ("auto", {"OTGAP_REQUIRE_TEX": "1"})):
        build, note = plan_build(mode, env, _which(False))
        assert build is True and "paper_pdf job will fail" in note
    assert plan_build(True, {}, _which(True)) == (True, None)
    assert plan_build(False, {}, _which(False)) == (False, None)
    with pytest.raises(PaperBuildError, match="true, false or auto"):
        plan_build("yes", {}, _which(True))


def test_require_tex_names_the_missing_programs_and_the_fix():
    require_tex(_which(True))
    with pytest.raises(PaperBuildError, match=r"\['latexmk', 'pdflatex', 'bibtex'\].*apt-get"):
        require_tex(_which(False))


# (overlay, target, rule -> expected job count in the dry run); None: the default target
DRY_RUNS = {
    "quick": (["config/quick.yaml"], None, {"paper_pdf": None, "paper_eos": 1}),
    "paper": ([], None, {"paper_pdf": 1}),
    "original": (["config/original.yaml"], None, {"paper_pdf": 1}),
    "original_quick": (["config/original_quick.yaml"], None, {"paper_pdf": None}),
    "biostatis_cifar": (
        ["config/biostatis_cifar.yaml"],
        "biostatis_cifar_table",
        {"biostatis_cifar_table": 1, "paper_pdf": None},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DRY_RUNS))
def test_dry_run_of_every_config_without_tex(name, no_tex_env, tmp_path):
    overlays, target, expect = DRY_RUNS[name]
    configs = ["--configfile", *overlays] if overlays else []
    build_pdf = yaml.safe_load((REPO / "config/config.yaml").read_text())["paper"]["build_pdf"]
    for overlay in overlays:
        build_pdf = (yaml.safe_load((REPO / overlay).read_text()).get("paper") or {}).get(
            "build_pdf", build_pdf
        )
    targets = [target] if target else []
    proc = _snakemake(no_tex_env, "-n", *configs, *_roots(tmp_path), "--", *targets)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    counts = job_counts(out)
    assert counts, out[-2000:]
    for rule, n in expect.items():
        if rule == "paper_pdf" and target is None:
            n = 1 if build_pdf is True else None  # auto/false: no PDF without TeX
        assert counts.get(rule) == n, (rule, counts)
    if build_pdf == "auto" and target is None:
        assert "paper PDF skipped" in out and "apt-get install" in out


@pytest.mark.slow
def test_plan_without_tex(no_tex_env):
    """`make plan` (the paper config) on a machine without TeX."""
    proc = subprocess.run(
        [sys.executable, "-m", "otgap.plan"],
        cwd=REPO, capture_output=True, text=True, env=no_tex_env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\ntotal" in proc.stdout and "paper_pdf" in proc.stdout


@pytest.mark.slow
def test_run_that_needs_the_pdf_stops_before_its_first_job(no_tex_env, tmp_path):
    """paper.build_pdf: true without TeX: not a failure after hours of training, but a message
    before the first job, naming the programs and the way out."""
    overlay = tmp_path / "pdf.yaml"
    overlay.write_text("paper: {build_pdf: true}\n")
    proc = _snakemake(
        no_tex_env, "--configfile", "config/quick.yaml", str(overlay), *_roots(tmp_path)
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "apt-get install" in out and "--omit-from paper_pdf" in out, out[-3000:]
    assert "Finished job" not in out
    assert not any((tmp_path / "results").rglob("*.npz")), "a job ran"
