"""The Edge-of-Stability summary table (booktabs LaTeX): per optimizer and learning rate, the
number of seeds and steps, final test accuracy, and for the full-batch top eigenvalue lambda_1 and,
where measured, the batch sharpness (BS): the late-phase ratio to the threshold (mean over seeds of
each seed's median over its last third of measurements, with a 95% t-interval from 3 or more
seeds) and the share of measurements above the threshold (pooled over seeds, Wilson interval).
Definitions live in ``otgap.analysis.eos`` (step 0 of preconditioned runs is left out).

A diverged run has no final accuracy or sharpness: its last finite values are from before the
blow-up (often step 0), so they are left out of the statistics, which cover the seeds that
finished; where every seed diverged the cells say "diverged at step k"."""

from __future__ import annotations

import math

import pandas as pd

from otgap.analysis.eos import config_statistics
from otgap.tables.latex import booktabs_table, mean_std, tex_escape

HEADER = (
    "Optimizer",
    r"$\eta$",
    "Threshold",
    "$n$",
    "Steps",
    r"Test acc.\ (\%)",
    r"late $\lambda_1/\mathrm{thr}$",
    r"$\lambda_1$ above (\%)",
    r"late BS$/\mathrm{thr}$",
    r"BS above (\%)",
    "Diverged",
)
NOTES = (
    "n = seeds; steps = optimizer updates per run; test acc. = mean \\pm std over the seeds",
    "that did not diverge; thr = the optimizer's stability threshold (2/lr for GD/SGD,",
    "(2+2 beta)/lr with momentum, the preconditioned one for Adam/AdamW); late = mean over seeds",
    "of each seed's median ratio over its last third of measurements, [95% t-interval] from",
    "n >= 3 seeds; above = share of all measurements above thr [95% Wilson interval];",
    "BS = batch sharpness, mean over K mini-batches of g^T H g / g^T g (sgd, momentum);",
    "step 0 of preconditioned runs is excluded. A landau1 + Langevin row trains for its own",
    "entry's epochs and seeds; the Landau systems table trains the same net, lr and batch size",
    "for systems.landau.train's epochs and seeds, so their accuracies differ by training length.",
    "Rule eos_table made this.",
)


def _threshold(value: float) -> str:
    return f"{value:.4g}" if value < 1000 else f"{value:.0f}"


def _diverged_steps(runs: pd.DataFrame) -> str:
    """' at step k[, m]' of the diverged seeds ('' where the steps are not recorded)."""
    if "diverged_step" not in runs:
        return ""
    steps = sorted({int(k) for k in runs.loc[runs["diverged"], "diverged_step"] if int(k) >= 0})
    return f" at step {', '.join(map(str, steps))}" if steps else ""


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def interval_cell(mean, lo=None, hi=None, digits: int = 2, scale: float = 1.0) -> str:
    """``$m$ [lo, hi]`` (``--`` without a finite mean; no interval where it is NaN)."""
    if not _finite(mean):
        return "--"
    body = f"{scale * mean:.{digits}f}"
    if _finite(lo) and _finite(hi):
        body += f"\\;[{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"
    return f"${body}$"


def _config_row(runs: pd.DataFrame) -> list[str]:
    """One table row from the per-seed summaries of one (optimizer, lr)."""
    first = runs.iloc[0]
    n_div, n = int(runs["diverged"].sum()), len(runs)
    steps = _diverged_steps(runs)
    diverged_cell = f"{n_div}/{n}" + (f" ({steps.strip()})" if n_div and steps else "")
    head = [
        tex_escape(first["optimizer"]),
        f"{first['lr']:g}",
        _threshold(first["threshold"]),
        str(n),
        str(int(first["steps"])) if "steps" in runs and pd.notna(first["steps"]) else "--",
    ]
    finished = runs[~runs["diverged"]]
    if finished.empty:
        cell = f"diverged{steps}"
        return [*head, cell, cell, cell, cell, cell, diverged_cell]
    r = config_statistics(finished).iloc[0]
    return [
        *head,
        mean_std(100 * r["final_test_acc_mean"], 100 * r["final_test_acc_std"], 1),
        interval_cell(
            r["late_ratio_median_mean"], r["late_ratio_median_lo"], r["late_ratio_median_hi"]
        ),
        interval_cell(r["share_above"], r["share_above_lo"], r["share_above_hi"], 0, 100),
        interval_cell(
            r.get("bs_late_ratio_median_mean"),
            r.get("bs_late_ratio_median_lo"),
            r.get("bs_late_ratio_median_hi"),
        ),
        interval_cell(
            r.get("bs_share_above"), r.get("bs_share_above_lo"), r.get("bs_share_above_hi"), 0, 100
        )
        if r.get("bs_share_above_n", 0)
        else "--",
        diverged_cell,
    ]


def summary_table(summary: pd.DataFrame) -> str:
    """LaTeX ``tabular`` (booktabs) from the per-run summary frame of the aggregate stage."""
    sections = []
    for (dataset, model, loss), group in summary.groupby(["dataset", "model", "loss"], sort=True):
        rows = [_config_row(runs) for _, runs in group.groupby(["optimizer", "lr"], sort=True)]
        sections.append((f"{dataset}, {model}, {loss} loss", rows))
    return booktabs_table(HEADER, sections, align="llrrrrrrrrr", notes=NOTES)
