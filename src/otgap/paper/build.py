"""Compiling the paper: whether to build (``paper.build_pdf``), latexmk, and its errors in words.

``build_pdf`` is ``auto`` (build when TeX is installed, otherwise skip with a warning that names
the Debian packages), ``true`` (fail before compiling when TeX is missing) or ``false`` (skip).
The environment switch ``OTGAP_REQUIRE_TEX=1`` (set in CI) turns the ``auto`` skip into a failure.
``SOURCE_DATE_EPOCH`` (and ``FORCE_SOURCE_DATE``) make pdfTeX's dates and PDF id depend on the
inputs only, so the same inputs give the same PDF bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

TEX_PROGRAMS = ("latexmk", "pdflatex", "bibtex")
TEX_PACKAGES = ("latexmk", "texlive-latex-base", "texlive-latex-recommended", "poppler-utils")
REQUIRE_ENV = "OTGAP_REQUIRE_TEX"


class PaperBuildError(RuntimeError):
    """The paper cannot be built; the message says why and what to do."""


def missing_tex(which=shutil.which) -> list[str]:
    """TeX programs the build needs that are not on PATH."""
    return [p for p in TEX_PROGRAMS if which(p) is None]


def install_hint() -> str:
    return "install TeX with: apt-get install -y " + " ".join(TEX_PACKAGES)


def decide_build(
    mode: object, env: Mapping[str, str] | None = None, which=shutil.which
) -> tuple[bool, str | None]:
    """(build?, warning) for ``paper.build_pdf`` = ``mode``; raises when a build is required
    but TeX is missing. ``mode`` is True, False or the string "auto"."""
    env = os.environ if env is None else env
    if mode not in (True, False, "auto"):
        raise PaperBuildError(f"paper.build_pdf must be true, false or auto, not {mode!r}")
    if mode is False:
        return False, None
    missing = missing_tex(which)
    if not missing:
        return True, None
    why = f"TeX program(s) {missing} not found on PATH; {install_hint()}"
    if mode is True:
        raise PaperBuildError(f"paper.build_pdf is true but {why} (or set build_pdf: auto/false)")
    if env.get(REQUIRE_ENV) == "1":
        raise PaperBuildError(f"{REQUIRE_ENV}=1 requires the paper PDF but {why}")
    return False, f"paper PDF skipped (paper.build_pdf: auto): {why}"


def plan_build(
    mode: object, env: Mapping[str, str] | None = None, which=shutil.which
) -> tuple[bool, str | None]:
    """(plan the PDF?, note) for the DAG: unlike ``decide_build`` it never raises for missing TeX,
    so every dry run, ``make plan`` and the jobs before the paper work on a machine without TeX.
    When the PDF is required (``true``, or ``auto`` with ``OTGAP_REQUIRE_TEX=1``) it stays
    planned and the TeX check moves to the job (``require_tex``, at its start) and to the start-up
    check of a run that is to build it (workflow/rules/paper.smk)."""
    env = os.environ if env is None else env
    try:
        return decide_build(mode, env, which)
    except PaperBuildError:
        if mode not in (True, "auto"):
            raise
        missing = missing_tex(which)
        return True, (
            f"TeX program(s) {missing} not found on PATH: the paper_pdf job will fail at its start "
            f"({install_hint()}, or set paper.build_pdf: auto to skip the PDF)"
        )


def require_tex(which=shutil.which) -> None:
    """Raise PaperBuildError naming the missing TeX programs and how to get them (the paper_pdf
    job's first step, and the start-up check of a run that builds the PDF)."""
    missing = missing_tex(which)
    if missing:
        raise PaperBuildError(
            f"the paper PDF needs TeX but program(s) {missing} are not on PATH; "
            f"{install_hint()} (or set paper.build_pdf: auto to skip the PDF, or false)"
        )


_ERROR_START = re.compile(r"^(! |.+:\d+: )")


def first_errors(log_text: str, n_lines: int = 12) -> str:
    """The first LaTeX error of a log with the lines after it (where TeX says what it saw)."""
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if _ERROR_START.match(line):
            return "\n".join(lines[i : i + n_lines])
    return "\n".join(lines[-n_lines:])


_UNDEFINED = re.compile(
    r"(LaTeX Warning: (?:Reference|Citation) [`'][^']*' (?:on page \d+ )?undefined.*"
    r"|LaTeX Warning: There were undefined references.*"
    r"|Warning--I didn't find a database entry for .*)"
)


def undefined_references(log_text: str) -> list[str]:
    """Warnings about undefined references or citations in a LaTeX (or BibTeX) log."""
    return sorted(set(_UNDEFINED.findall(log_text)))


def latex_env(source_date_epoch: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["SOURCE_DATE_EPOCH"] = str(int(source_date_epoch))
    env["FORCE_SOURCE_DATE"] = "1"
    env["TZ"] = "UTC"
    return env


def compile_pdf(
    build_dir: str | Path, *, main: str = "main.tex", source_date_epoch: int = 0, timeout: int = 300
) -> Path:
    """Run latexmk (pdflatex + bibtex) in ``build_dir``; return the PDF's path.

    A LaTeX error raises PaperBuildError with the first error lines and the log's path; so do
    undefined references or citations left after latexmk's last pass.
    """
    build_dir = Path(build_dir)
    stem = Path(main).stem
    cmd = [
        "latexmk",
        "-pdf",
        "-norc",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        main,
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=build_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=latex_env(source_date_epoch),
        )
    except FileNotFoundError as exc:
        raise PaperBuildError(f"latexmk not found: {install_hint()}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PaperBuildError(f"latexmk took over {timeout} s in {build_dir}") from exc
    log_path = build_dir / f"{stem}.log"
    log_text = log_path.read_text(errors="replace") if log_path.is_file() else ""
    if proc.returncode != 0:
        detail = first_errors(log_text) if log_text else (proc.stdout + proc.stderr)[-2000:]
        raise PaperBuildError(
            f"LaTeX failed (latexmk exit {proc.returncode}); first error:\n{detail}\n"
            f"full log: {log_path}"
        )
    blg = build_dir / f"{stem}.blg"
    problems = undefined_references(log_text)
    if blg.is_file():
        problems += undefined_references(blg.read_text(errors="replace"))
    if problems:
        raise PaperBuildError(
            "undefined references or citations:\n  "
            + "\n  ".join(problems)
            + f"\nfull log: {log_path}"
        )
    pdf = build_dir / f"{stem}.pdf"
    if not pdf.is_file():
        raise PaperBuildError(f"latexmk succeeded but wrote no {pdf}; log: {log_path}")
    return pdf
