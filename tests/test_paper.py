"""The paper stage: number formatting, macros, build switches, and the compiled PDF.

Fixture runs (aggregate tables written here, with values whose printed form is worked out by hand
in the test) exercise the generators and the LaTeX build without a training run; the e2e tests
read the shared quick run's PDF (fixture ``quick_run``).
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from otgap.paper.build import (
    PaperBuildError,
    compile_pdf,
    decide_build,
    first_errors,
    undefined_references,
)
from otgap.paper.macros import MacroSet, defined_macros, used_macros
from otgap.paper.numbers import (
    best_index,
    format_mean_std,
    format_percent,
    format_value,
    mean_std_cell,
)
from otgap.paper.provenance import short_commit

from .conftest import QUICK, REPO, job_counts, snakemake
from .test_workflow import repo_copy  # noqa: F401 - fixture: a hard-linked copy of the quick run

HAVE_TEX = all(shutil.which(p) for p in ("latexmk", "pdflatex", "bibtex", "pdftotext"))
needs_tex = pytest.mark.skipif(
    not HAVE_TEX and os.environ.get("OTGAP_REQUIRE_TEX") != "1",
    reason="TeX (latexmk, pdflatex, bibtex) or pdftotext not installed",
)
MACRO_PREFIXES = ("Fhn", "Eos", "Cfg", "Orig", "Cmp", "Sys", "Claims", "Scope")


# ---- number formatting (expected strings worked out by hand) ---------------------------------
@pytest.mark.parametrize(
    ("mean", "std", "expected"),
    [
        (0.123456, 0.04567, ("0.123", "0.046")),  # std 2 s.f. -> 3 decimals
        (12.345, 1.5, ("12.3", "1.5")),
        (1234.4, 250.0, ("1234", "250")),
        (0.08123, 0.00341, ("0.0812", "0.0034")),
        (0.01724, 0.000371, ("0.01724", "0.00037")),  # small std: still fixed decimals
        (-0.00049, 0.0021, ("-0.0005", "0.0021")),
        (0.5, float("nan"), ("0.500", None)),  # one seed: 3 significant figures
        (float("nan"), 0.1, ("n/a", None)),
    ],
)
def test_mean_std_rounding(mean, std, expected):
    assert format_mean_std(mean, std) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.00012345, "1.23 \\times 10^{-4}"),
        (123456.0, "1.23 \\times 10^{5}"),
        (0.0009996, "1.00 \\times 10^{-3}"),
        (13.3333, "13.3"),
        (2.0, "2.00"),
        (0.0, "0.00"),
        (None, "n/a"),
        ("x", "n/a"),
    ],
)
def test_format_value(value, expected):
    assert format_value(value) == expected


def test_cells_bold_marks_and_divergence():
    assert mean_std_cell(0.123456, 0.04567, bold=True) == "$\\mathbf{0.123 \\pm 0.046}$"
    assert mean_std_cell(1.0, None, mark="^{\\dagger}") == "$1.00^{\\dagger}$"
    assert mean_std_cell(0.5, 0.1, diverged=2, n=2) == "diverged"
    assert mean_std_cell(0.5, None, diverged=1, n=3) == "$0.500$ (1/3 diverged)"
    assert format_percent(0.275) == "27.5"
    assert best_index([0.3, None, 0.1, float("nan")]) == 2
    assert best_index([0.3, 0.9, 0.9], lower_is_better=False) == 1
    assert best_index([None, float("nan")]) is None


def test_macro_names_and_parsing():
    ms = MacroSet(prefix="Fhn")
    ms.add("Rmse", "$0.1$")
    ms.add("Missing", None)
    with pytest.raises(ValueError, match="letters only"):
        ms.add("Rmse2", "1")
    with pytest.raises(ValueError, match="twice"):
        ms.add("Rmse", "1")
    tex = ms.render("header")
    assert defined_macros(tex) == {"FhnRmse", "FhnMissing"}
    assert "\\newcommand{\\FhnMissing}{n/a}" in tex
    assert used_macros("\\FhnRmse{} and \\% not \\Eos % \\Commented") == {"FhnRmse", "Eos"}


def test_short_commit():
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert short_commit(sha) == "0123456"
    assert short_commit(sha + "-dirty") == "0123456+dirty"
    assert short_commit("unknown") == "unknown"


# ---- build switches ------------------------------------------------------------------------
def _which(present):
    return lambda prog: f"/usr/bin/{prog}" if present else None


def test_build_pdf_semantics():
    assert decide_build(False, {}, _which(False)) == (False, None)
    assert decide_build(True, {}, _which(True)) == (True, None)
    assert decide_build("auto", {}, _which(True)) == (True, None)
    build, warning = decide_build("auto", {}, _which(False))
    assert build is False
    assert "texlive-latex-base" in warning and "latexmk" in warning
    with pytest.raises(PaperBuildError, match="texlive-latex-recommended"):
        decide_build(True, {}, _which(False))
    with pytest.raises(PaperBuildError, match="OTGAP_REQUIRE_TEX=1"):
        decide_build("auto", {"OTGAP_REQUIRE_TEX": "1"}, _which(False))
    with pytest.raises(PaperBuildError, match="true, false or auto"):
        decide_build("yes", {}, _which(True))


def test_log_parsing():
    log = "\n".join(
        [
            "(./main.tex",
            "./sections/fhn.tex:12: Undefined control sequence.",
            "l.12 \\FhnNope",
            "more",
            "LaTeX Warning: Citation `nobody2020' on page 2 undefined on input line 3.",
        ]
    )
    assert (
        first_errors(log, 2) == "./sections/fhn.tex:12: Undefined control sequence.\nl.12 \\FhnNope"
    )
    assert undefined_references(log) == [
        "LaTeX Warning: Citation `nobody2020' on page 2 undefined on input line 3."
    ]


@needs_tex
def test_latex_error_names_first_error_and_log(tmp_path):
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\begin{document}\nfine\n\\NoSuchMacro\n\\end{document}\n"
    )
    with pytest.raises(PaperBuildError) as info:
        compile_pdf(tmp_path)
    msg = str(info.value)
    assert "Undefined control sequence" in msg and "NoSuchMacro" in msg
    assert str(tmp_path / "main.log") in msg


@needs_tex
def test_undefined_citation_fails(tmp_path):
    (tmp_path / "refs.bib").write_text("@misc{known, title={T}, author={A}, year={2000}}\n")
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\begin{document}\n\\cite{unknownkey}\n"
        "\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n"
    )
    with pytest.raises(PaperBuildError, match="unknownkey"):
        compile_pdf(tmp_path)


# ---- fixture runs: the scripts on hand-made aggregate tables --------------------------------
class NL(SimpleNamespace):
    """Stand-in for Snakemake's named lists: attributes plus iteration over the values."""

    def __iter__(self):
        for value in vars(self).values():
            yield from (value if isinstance(value, list) else [value])


class Wildcards(dict):
    """Stand-in for Snakemake's wildcards: a dict with attribute access."""

    __getattr__ = dict.__getitem__


CONDITIONS = [
    {"name": "regular", "jitter": 0.0, "obs_fraction": 1.0},
    {"name": "jitter", "jitter": 0.3, "obs_fraction": 1.0},
    {"name": "sparse50", "jitter": 0.3, "obs_fraction": 0.5},
]
MODELS = ["neural_ode", "neural_ode_oracle", "lstm_dt", "odernn", "grud"]
SIDE = {"provenance": {"git_commit": "abcdef0123456789abcdef0123456789abcdef01-dirty"}}


def _figure(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, metadata={"CreationDate": None})
    plt.close(fig)


def make_run(root: Path, run: str, *, models=MODELS, base=0.1, diverge_adam=False) -> Path:
    """Aggregate tables of a fake run: FHN stats (mean = base + 0.01 k), EoS summary."""
    r = root / "results" / run
    (r / "aggregate" / "fhn").mkdir(parents=True)
    (r / "aggregate" / "eos").mkdir(parents=True)
    (r / "data" / "fhn" / "system=fhn").mkdir(parents=True)
    (r / "figures").mkdir()
    rows = []
    for ci, c in enumerate(CONDITIONS):
        for mi, m in enumerate(models):
            for metric in ("rmse_interp", "rmse_rollout"):
                rows.append(
                    {
                        "system": "fhn",
                        "condition": c["name"],
                        "model": m,
                        "reference": models[0],
                        "metric": metric,
                        "mean": base + 0.01 * mi + 0.1 * ci,
                        "std": 0.0034,
                        "significant": mi == 2,
                        "n_nonfinite": 0,
                    }
                )
    pd.DataFrame(rows).to_csv(r / "aggregate" / "fhn" / "stats.csv", index=False)
    (r / "aggregate" / "fhn" / "metrics.json").write_text(json.dumps(SIDE))
    (r / "data" / "fhn" / "system=fhn" / "lyapunov.json").write_text(
        json.dumps({"lyapunov": -0.0123})
    )
    runs = []
    for opt, lr, thr in (("gd", 0.2, 10.0), ("sgd", 0.1, 20.0), ("adam", 0.001, 38000.0)):
        for seed, (frac, n) in enumerate(((0.5, 10), (0.2, 30))):
            runs.append(
                {
                    "dataset": "digits",
                    "model": "mlp",
                    "loss": "mse",
                    "optimizer": opt,
                    "lr": lr,
                    "seed": seed,
                    "threshold": thr,
                    "final_train_loss": 0.01 * (seed + 1),
                    "final_test_acc": 0.9 + 0.01 * seed,
                    "max_ratio": 1.1,
                    "final_ratio": 1.0,
                    "late_ratio_median": 1.02,
                    "frac_above": frac,
                    "n_measurements": n,
                    "diverged": diverge_adam and opt == "adam",
                }
            )
    pd.DataFrame(runs).to_csv(r / "aggregate" / "eos" / "summary.csv", index=False)
    (r / "aggregate" / "eos" / "aggregate.json").write_text(json.dumps(SIDE))
    for name in ("fhn", "comparison", "multiseed"):
        _figure(r / "figures" / f"{name}.pdf")
    return r


def _run_script(name: str, log: Path, **parts) -> None:
    smk = SimpleNamespace(
        input=NL(**parts.get("input", {})),
        output=NL(**parts["output"]),
        params=SimpleNamespace(**parts.get("params", {})),
        log=[str(log)],
        threads=1,
        wildcards=Wildcards(parts.get("wildcards", {})),
        rule=name,
    )
    runpy.run_path(str(REPO / "scripts" / f"{name}.py"), init_globals={"snakemake": smk})


def build_fixture_paper(
    root: Path, run: str, other: str, systems: dict | None = None, models=MODELS
) -> Path:
    """The paper stage's scripts, in DAG order, on fixture run ``run`` (compared with ``other``)."""
    r = root / "results" / run
    o = root / "results" / other
    g = r / "paper" / "generated"
    logs = root / "logs"
    _run_script(
        "paper_fhn",
        logs / "fhn.log",
        input={
            "stats": str(r / "aggregate/fhn/stats.csv"),
            "sidecar": str(r / "aggregate/fhn/metrics.json"),
            "lyapunov": str(r / "data/fhn/system=fhn/lyapunov.json"),
            "figure": str(r / "figures/fhn.pdf"),
        },
        output={
            "macros": str(g / "fhn_macros.tex"),
            "table": str(g / "fhn_table.tex"),
            "figure_tex": str(g / "fhn_figure.tex"),
            "figure": str(g / "fhn_figure2.pdf"),
        },
        params={
            "system": "fhn",
            "conditions": CONDITIONS,
            "models": list(models),
            "seeds": [0, 1],
            "reference": "neural_ode",
            "metrics": ["rmse_interp", "rmse_rollout"],
            "focus_condition": "jitter",
        },
    )
    _run_script(
        "paper_eos",
        logs / "eos.log",
        input={
            "summary": str(r / "aggregate/eos/summary.csv"),
            "sidecar": str(r / "aggregate/eos/aggregate.json"),
            "comparison": str(r / "figures/comparison.pdf"),
            "multiseed": str(r / "figures/multiseed.pdf"),
        },
        output={
            "macros": str(g / "eos_macros.tex"),
            "table": str(g / "eos_table.tex"),
            "figures_tex": str(g / "eos_figures.tex"),
            "comparison": str(g / "eos_comparison.pdf"),
            "multiseed": str(g / "eos_multiseed.pdf"),
        },
    )
    import yaml

    from otgap.config import merge

    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    this = merge(base, {"run": run})
    orig = merge(base, yaml.safe_load((REPO / "config/original.yaml").read_text()))
    _run_script(
        "paper_settings",
        logs / "settings.log",
        output={"macros": str(g / "settings_macros.tex")},
        params={"settings": {"this": this, "other": orig}},
    )
    other_inputs = {}
    if (o / "aggregate/fhn/stats.csv").is_file():
        other_inputs = {
            "other_fhn_stats": str(o / "aggregate/fhn/stats.csv"),
            "other_eos_summary": str(o / "aggregate/eos/summary.csv"),
            "other_lyapunov": [str(o / "data/fhn/system=fhn/lyapunov.json")],
        }
    _run_script(
        "paper_compare",
        logs / "compare.log",
        input={
            "fhn_stats": str(r / "aggregate/fhn/stats.csv"),
            "eos_summary": str(r / "aggregate/eos/summary.csv"),
            "sidecar": str(r / "aggregate/fhn/metrics.json"),
            "lyapunov": str(r / "data/fhn/system=fhn/lyapunov.json"),
            **other_inputs,
        },
        output={"table": str(g / "compare_table.tex"), "macros": str(g / "compare_macros.tex")},
        params={
            "this_run": run,
            "other_run": other,
            "condition": "jitter",
            "models": ["neural_ode", "neural_ode_oracle", "lstm_dt", "odernn"],
            "optimizers": ["gd", "sgd", "adam"],
        },
    )
    # the claims table and the scope/cost tables (rules paper_claims, paper_scope)
    _run_script(
        "paper_claims",
        logs / "claims.log",
        input={
            "claims": str(REPO / "paper/claims.yaml"),
            "fhn_metrics": str(r / "aggregate/fhn/metrics.csv"),
            "eos_summary": str(r / "aggregate/eos/summary.csv"),
            "lyapunov": str(r / "data/fhn/system=fhn/lyapunov.json"),
        },
        output={
            "table": str(g / "claims_table.tex"),
            "macros": str(g / "claims_macros.tex"),
            "csv": str(r / "paper/claims.csv"),
        },
        params={"config": this, "config_dir": str(REPO / "config")},
    )
    _run_script(
        "paper_scope",
        logs / "scope.log",
        input={"device": str(r / "data/fhn/system=fhn/lyapunov.json")},
        output={
            "table": str(g / "scope_table.tex"),
            "cost": str(g / "scope_cost.tex"),
            "macros": str(g / "scope_macros.tex"),
            "provenance": str(g / "provenance_table.tex"),
        },
        params={
            "makers": {
                str(r / "aggregate/fhn/metrics.json"): (
                    "fhn_aggregate",
                    "scripts/fhn_aggregate.py",
                ),
                str(r / "aggregate/eos/aggregate.json"): (
                    "eos_aggregate",
                    "scripts/eos_aggregate.py",
                ),
            },
            "results": str(r),
            "config": this,
            "config_dir": str(REPO / "config"),
            "benchmarks": str(root / "logs" / run / "benchmarks"),
        },
    )
    for name, tables in (systems or {}).items():
        _run_script(
            "paper_system",
            logs / f"system_{name}.log",
            input={"tables": [str(t) for t in tables]},
            output={"tex": str(g / f"system_{name}.tex")},
            params={"makers": {str(t): ("landau_aggregate", "scripts/landau.py") for t in tables}},
            wildcards={"system": name},
        )
    sources = sorted(
        str(p)
        for p in [
            REPO / "paper/main.tex",
            REPO / "paper/references.bib",
            *(REPO / "paper/sections").glob("*.tex"),
        ]
    )
    _run_script(
        "paper_pdf",
        logs / "pdf.log",
        input={"sources": sources, "generated": sorted(str(p) for p in g.iterdir())},
        output={"pdf": str(r / "paper/main.pdf")},
        params={
            "generated_dir": str(g),
            "build_dir": str(r / "paper/build"),
            "systems": list(systems or {}),
            "source_date_epoch": 1767225600,
        },
    )
    return r / "paper"


def pdf_text(pdf: Path, *, layout: bool = True) -> str:
    args = ["pdftotext", *(["-layout"] if layout else []), str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Numbers the sources may show without a generated file: appendix names, section/table/figure
# numbers, the 2 of the threshold 2/eta, licence versions, page numbers on lines of their own.
ALLOWED_CONTEXTS = [
    r"\bA\.[12]\b",
    r"\b(?:Table|Figure|Figures|Section|Appendix)\s+\d+(?:\.\d+)*(?:\s+and\s+\d+)?",
    r"\b2/\s*η",
    r"CC BY(?:-NC)? 4\.0",
    r"(?m)^\s*\d+(?:\.\d+)*\s+(?=[A-Z])",  # section headings
    r"(?m)^\s*\d+\s*$",  # page numbers
    r"(?m)^\s*\d+\s+(?=\S)",  # layout-mode page footers / stray heading numbers
]


def _tex_numbers(text: str) -> set[str]:
    text = re.sub(r"(?<!\\)%.*", "", text)
    text = re.sub(r"\\multicolumn\{\d+\}", "", text)
    return set(NUMBER.findall(text))


def allowed_numbers(paper_dir: Path) -> set[str]:
    """Numbers of the generated files (tex and figure text) and of the bibliography."""
    allowed = _tex_numbers((REPO / "paper" / "references.bib").read_text())
    for f in (paper_dir / "generated").iterdir():
        if f.suffix == ".tex":
            allowed |= _tex_numbers(f.read_text())
        elif f.suffix == ".pdf":
            allowed |= set(NUMBER.findall(pdf_text(f)))
    return allowed


def stray_numbers(paper_dir: Path) -> list[str]:
    # reading order, not layout: in layout mode a shrunk wide table's cells can run into each
    # other at a column edge (0.012 became "012")
    text = pdf_text(paper_dir / "main.pdf", layout=False)
    # scientific notation: x 10^{-4} reads "× 10−4" and 10^{5} reads "× 105" in the PDF's text
    text = re.sub(r"×\s*10(−?\d+)", lambda m: " 10 " + m.group(1).replace("−", " "), text)
    for pattern in ALLOWED_CONTEXTS:
        text = re.sub(pattern, " ", text)
    allowed = allowed_numbers(paper_dir)
    return sorted({n for n in NUMBER.findall(text) if n not in allowed})


def macro_values(paper_dir: Path) -> dict[str, str]:
    out = {}
    for f in (paper_dir / "generated").glob("*.tex"):
        for name, value in re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}", f.read_text()):
            out[name] = value.split("}  %")[0]
    return out


def source_text(paper_dir: Path) -> str:
    """The sources and generated parts that use macros (not the files defining them)."""
    files = [*(REPO / "paper").rglob("*.tex"), *(paper_dir / "generated").glob("*.tex")]
    return "\n".join(f.read_text() for f in files if not f.name.endswith("_macros.tex"))


def check_paper(paper_dir: Path) -> str:
    """Checks every built paper must pass; returns the PDF text."""
    text = pdf_text(paper_dir / "main.pdf")
    flat = " ".join(text.split())
    tokens = set(NUMBER.findall(text))
    # every project macro used is defined
    used = {m for m in used_macros(source_text(paper_dir)) if m.startswith(MACRO_PREFIXES)}
    defined = set(macro_values(paper_dir))
    assert used <= defined, f"macros used but not defined: {sorted(used - defined)}"
    # the values of the macros the text uses are in the PDF
    for name in used:
        for number in _tex_numbers(macro_values(paper_dir)[name]):
            assert number in tokens, f"\\{name}'s number {number} is not in the PDF text"
    # the generated tables' numbers are in the PDF
    for table in (paper_dir / "generated").glob("*_table.tex"):
        missing = _tex_numbers(table.read_text()) - tokens
        assert not missing, f"{table.name}: numbers {sorted(missing)} not in the PDF"
    # no undefined references or citations in latexmk's log
    log = (paper_dir / "build" / "main.log").read_text(errors="replace")
    assert not undefined_references(log)
    assert "??" not in flat
    # no number that no generated file holds
    assert stray_numbers(paper_dir) == []
    return flat


def compare_rows(paper: Path) -> str:
    """Body rows of the generated comparison table."""
    tex = (paper / "generated" / "compare_table.tex").read_text()
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    return body


@needs_tex
def test_fixture_paper_with_original_run(tmp_path):
    make_run(tmp_path, "fixture", base=0.123456)
    make_run(
        tmp_path,
        "original",
        models=["neural_ode_oracle", "lstm_dt", "odernn"],
        base=0.0812,
        diverge_adam=True,
    )
    paper = build_fixture_paper(tmp_path, "fixture", "original")
    text = check_paper(paper)
    # A.1: neural_ode at sparse50 (mean 0.123456 + 0.2, std 0.0034) and the oracle at jitter
    assert "0.3235 ± 0.0034" in text
    # "What the corrections change": the original run's oracle at jitter: 0.0812 + 0 + 0.1
    assert "0.1812 ± 0.0034" in text  # original run, neural_ode_oracle is its first model
    # share of GD measurements above 2/lr: (0.5*10 + 0.2*30)/40 = 27.5 %
    assert "27.5" in text
    assert "not run" not in compare_rows(paper)
    # captions end with provenance: rule, script, short commit with +dirty
    assert "fhn_aggregate" in text and "abcdef0+dirty" in text


@needs_tex
def test_fixture_paper_without_original_run_and_diverged_cells(tmp_path):
    make_run(tmp_path, "fixture", diverge_adam=True)
    paper = build_fixture_paper(tmp_path, "fixture", "original")
    text = check_paper(paper)
    # no reference result of the original-settings run: no table of "not run", one sentence
    compare = (paper / "generated" / "compare_table.tex").read_text()
    assert "\\begin{table}" not in compare and "not run" not in text
    assert "python -m otgap.paper.reference keep" in compare
    eos_table = (paper / "generated" / "eos_table.tex").read_text()
    adam_row = next(line for line in eos_table.splitlines() if line.startswith("adam"))
    assert adam_row.count("diverged") >= 4  # every metric cell of the all-diverged config


@needs_tex
def test_original_settings_paper_builds_with_fewer_models(tmp_path):
    """The original run trains three models: the others' macros exist and read n/a."""
    models = ["neural_ode_oracle", "lstm_dt", "odernn"]
    make_run(tmp_path, "original", models=models, base=0.0812)
    paper = build_fixture_paper(tmp_path, "original", "fixture", models=models)
    text = check_paper(paper)
    assert "not run" not in text  # the other run has no reference: the comparison is omitted
    macros = macro_values(paper)
    assert macros["FhnNodeRmseSparsest"] == "n/a" and macros["FhnGrudRmseSparsest"] == "n/a"
    assert "0.2912 ± 0.0034" in text  # oracle, sparse50: 0.0812 + 0.2


@needs_tex
def test_system_section_included_when_its_table_exists(tmp_path):
    make_run(tmp_path, "fixture")
    table = tmp_path / "results/fixture/systems/landau/accuracy.csv"
    table.parent.mkdir(parents=True)
    pd.DataFrame({"dataset": ["moons", "circles"], "test_acc": [0.9731, 0.8814]}).to_csv(
        table, index=False
    )
    paper = build_fixture_paper(tmp_path, "fixture", "original", {"landau": [table]})
    text = check_paper(paper)
    assert "Landau network" in text and "0.973" in text and "0.881" in text


@needs_tex
def test_same_inputs_same_pdf_bytes(tmp_path):
    make_run(tmp_path, "fixture")
    first = build_fixture_paper(tmp_path, "fixture", "original")
    pdf1 = (first / "main.pdf").read_bytes()
    shutil.rmtree(first)
    second = build_fixture_paper(tmp_path, "fixture", "original")
    assert (second / "main.pdf").read_bytes() == pdf1


# ---- the quick run ---------------------------------------------------------------------------
@pytest.mark.e2e
@needs_tex
def test_quick_paper(quick_run):
    paper = quick_run / "paper"
    assert (paper / "main.pdf").read_bytes()[:4] == b"%PDF"
    text = check_paper(paper)
    assert "Irregularly sampled FitzHugh" in text and "Edge of Stability" in text


@pytest.mark.e2e
def test_changed_aggregate_reruns_only_its_part_and_the_pdf(repo_copy):  # noqa: F811
    """A new EoS summary (content and time) in a copy of the quick run: dry-run job counts."""
    summary = repo_copy / "results" / "quick" / "aggregate" / "eos" / "summary.csv"
    frame = pd.read_csv(summary)
    frame.loc[0, "final_test_acc"] = 0.5
    summary.unlink()  # a hard link to the real run: write a new file instead
    frame.to_csv(summary, index=False)  # newer than every output of the run
    proc = snakemake("-n", *QUICK, cwd=repo_copy)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("paper_eos") == 1 and counts.get("paper_compare") == 1, counts
    assert "paper_fhn" not in counts and "paper_settings" not in counts
    assert not any(rule.startswith(("fhn_", "eos_train", "eos_landscape")) for rule in counts)
    assert counts.get("paper_pdf") == (1 if HAVE_TEX else None)


# ---- configs and the data dictionary ---------------------------------------------------------
def _merged(overlay: str) -> dict:
    import yaml

    from otgap.config import merge

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return merge(base, yaml.safe_load((REPO / "config" / overlay).read_text()))


@pytest.mark.parametrize("overlay", ["quick.yaml", "original.yaml", "original_quick.yaml"])
def test_configs_validate_with_paper_section(overlay):
    from otgap.config import validate_config

    cfg = validate_config(_merged(overlay), REPO / "workflow/schemas/config.schema.yaml")
    assert cfg["paper"]["build_pdf"] in (True, False, "auto")
    assert cfg["paper"]["compare_run"] != cfg["run"]


def test_build_pdf_typo_is_a_config_error():
    from otgap.config import ConfigError, validate_config

    cfg = _merged("quick.yaml")
    cfg["paper"]["build_pdf"] = "yes"
    with pytest.raises(ConfigError, match="build_pdf"):
        validate_config(cfg, REPO / "workflow/schemas/config.schema.yaml")


def test_original_settings_as_the_references_state():
    """config/original.yaml against docs/sources.md#the-paper-and-its-repository (values transcribed here)."""
    cfg = _merged("original.yaml")
    assert cfg["run"] == "original"
    assert cfg["fhn"]["systems"] == ["fhn"]
    assert all(c["obs_fraction"] == 1.0 for c in cfg["fhn"]["conditions"])
    assert cfg["fhn"]["analysis"]["reference"] == "neural_ode_oracle"
    train = cfg["fhn"]["train"]
    assert (train["epochs"], train["lr"], train["hidden"]) == (1500, 0.0005, 128)
    assert (train["plateau_factor"], train["plateau_patience"]) == (0.5, 200)
    odernn = cfg["fhn"]["train"]["model_kwargs"]["odernn"]
    assert (odernn["method"], odernn["n_sub"]) == ("euler", 1)
    assert odernn.get("feedback", "forecast") == "forecast"  # autoregressive, as the original
    assert cfg["fhn"]["dataset"]["rollout_jitter"] == 0.45
    assert cfg["fhn"]["dataset"]["rollout_unseen_jitter"] is None
    # teacher-forced one-step training, every epoch, last weights; the paper's dense LSTM+dt
    assert (train["objective"], train["patience"], train["keep"]) == ("one_step", None, "last")
    assert cfg["fhn"]["train"]["model_kwargs"]["lstm_dt"] == {"mode": "dense"}
    eos = cfg["eos"]
    assert eos["datasets"] == ["pathmnist"] and eos["seeds"] == [0, 1, 2, 3, 4]
    assert eos["optimizers"] == [{"name": "sgd", "lrs": [0.15], "batch_size": 128, "epochs": 50}]
    assert eos["model_hyper"]["mlp"] == {"hidden": [256, 128], "activation": "relu"}
    assert (eos["eig_subset"], eos["eig_max_iter"], eos["eig_tol"]) == (256, 50, 1e-4)
    assert eos["eig_method"] == "power"  # cold-started power iteration, as the original


def test_original_config_dry_run():
    proc = snakemake("-n", "--configfile", "config/original.yaml", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["fhn_train"] == 1 * 2 * 3  # system x conditions x models (one job trains 5 seeds)
    assert counts["eos_train"] == 5
    if HAVE_TEX:
        assert counts["paper_pdf"] == 1


def _dictionary_columns() -> set[str]:
    text = (REPO / "docs" / "data_dictionary.md").read_text()
    return set(re.findall(r"(?m)^\| ([a-z][a-z0-9_.]*) \|", text))


@pytest.mark.e2e
def test_data_dictionary_covers_every_csv_column(quick_run):
    documented = _dictionary_columns()
    missing = {}
    for csv in sorted(quick_run.rglob("*.csv")):
        if csv.name.startswith("."):  # a temporary file of an atomic write
            continue
        try:
            columns = pd.read_csv(csv, nrows=0).columns
        except pd.errors.EmptyDataError:  # e.g. the untrained baseline's empty history.csv
            continue
        lacking = [c for c in columns if c not in documented and not re.fullmatch(r"eig_\d+", c)]
        if lacking:
            missing[str(csv.relative_to(quick_run))] = lacking
    assert not missing, f"columns missing from docs/data_dictionary.md: {missing}"


# ---- generators without LaTeX ----------------------------------------------------------------
def test_eos_table_diverged_cells_and_bold_best():
    from otgap.paper.eos import eos_table

    rows = []
    for opt, accs, div in (
        ("gd", (0.5, 0.6), (True, True)),
        ("sgd", (0.91, 0.93), (False, False)),
        ("adam", (0.99, 0.80), (False, True)),
    ):
        for seed, (acc, d) in enumerate(zip(accs, div, strict=True)):
            rows.append(
                {
                    "dataset": "digits",
                    "model": "mlp",
                    "loss": "mse",
                    "optimizer": opt,
                    "lr": 0.1,
                    "seed": seed,
                    "final_test_acc": acc,
                    "diverged": d,
                    "late_ratio_median": 1.5,  # the late-phase column (no "max" column)
                }
            )
    tex = eos_table(pd.DataFrame(rows), provenance="P.")
    lines = {
        line.split(" & ")[0]: line.split(" & ")[2:]
        for line in tex.splitlines()
        if " & " in line and not line.startswith("Optimizer")
    }
    assert lines["gd"] == ["diverged", "diverged \\\\"]
    # sgd: mean 92.0, std 1.414 -> 1.4 -> one decimal; best complete config -> bold
    assert lines["sgd"][0] == "$\\mathbf{92.0 \\pm 1.4}$"
    # adam: one of two seeds diverged: the other seed's value, no std, the count in words
    assert lines["adam"][0] == "$99.0$ (1/2 diverged)"
    assert lines["adam"][1] == "$1.50$ \\\\"


def test_fhn_macros_pick_sparsest_condition_and_best_model():
    from otgap.paper.fhn import fhn_macros

    stats = pd.DataFrame(
        [
            {
                "system": "fhn",
                "condition": c,
                "model": m,
                "metric": "rmse_interp",
                "mean": mean,
                "std": 0.01,
                "significant": sig,
                "n_nonfinite": lost,
            }
            for c, m, mean, sig, lost in (
                ("jitter", "neural_ode", 0.2, False, 0),
                ("jitter", "grud", 0.1, True, 0),
                ("sparse30", "neural_ode", 0.31, False, 0),
                ("sparse30", "grud", 0.05, True, 1),  # lost a seed: cannot be best
                ("sparse30", "odernn", 0.42, False, 0),
            )
        ]
    )
    conditions = [
        {"name": "jitter", "jitter": 0.3, "obs_fraction": 1.0},
        {"name": "sparse30", "jitter": 0.3, "obs_fraction": 0.3},
    ]
    ms = fhn_macros(
        stats,
        system="fhn",
        conditions=conditions,
        models=["neural_ode", "grud", "odernn"],
        reference="neural_ode",
        lyapunov=None,
        n_seeds=2,
    )
    assert ms.value("FhnSparsest") == "sparse30"
    assert ms.value("FhnSparsestObsPercent") == "30.0"
    assert ms.value("FhnNodeRmseSparsest") == "$0.310 \\pm 0.010$"
    assert ms.value("FhnBestSparsest") == "neural\\_ode"
    assert ms.value("FhnNSignificant") == "2 of 3"
    assert ms.value("FhnLyapunov") == "n/a"
    assert (
        fhn_macros(
            None,
            system="fhn",
            conditions=conditions,
            models=["neural_ode"],
            reference="neural_ode",
            lyapunov=0.5,
            n_seeds=1,
        ).value("FhnNodeRmseSparsest")
        == "n/a"
    )
