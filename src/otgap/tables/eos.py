"""The Edge-of-Stability summary table (booktabs LaTeX): per optimizer and learning rate, mean and
standard deviation over seeds of final test accuracy, max and final sharpness/threshold and the
fraction of measurements above the threshold, and how many seeds diverged.

A diverged run has no final accuracy or sharpness: its last finite values are from before the
blow-up (often step 0), so they are left out of the statistics, which cover the seeds that
finished; where every seed diverged the cells say "diverged at step k"."""

from __future__ import annotations

import pandas as pd

from otgap.analysis.eos import config_statistics
from otgap.tables.latex import booktabs_table, mean_std, tex_escape

HEADER = (
    "Optimizer",
    r"$\eta$",
    "Threshold",
    r"Test acc.\ (\%)",
    r"max $\lambda_1/\mathrm{thr}$",
    r"final $\lambda_1/\mathrm{thr}$",
    r"Above thr.\ (\%)",
    r"edge $\lambda_1/\mathrm{thr}$",
    r"$L_T/L_0$",
    "Diverged",
)
NOTES = (
    "mean \\pm std over the seeds that did not diverge; lambda_1/thr = sharpness over the",
    "optimizer's stability threshold",
    "(2/lr for GD/SGD, (2+2 beta)/lr with momentum, the preconditioned one for Adam/AdamW);",
    "above thr. = share of the sharpness measurements above it; edge = median of lambda_1/thr",
    "over the last third of the measurements; L_T/L_0 = final over initial training loss.",
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


def _config_row(runs: pd.DataFrame) -> list[str]:
    """One table row from the per-seed summaries of one (optimizer, lr)."""
    first = runs.iloc[0]
    n_div, n = int(runs["diverged"].sum()), len(runs)
    steps = _diverged_steps(runs)
    diverged_cell = f"{n_div}/{n}" + (f" ({steps.strip()})" if n_div and steps else "")
    head = [tex_escape(first["optimizer"]), f"{first['lr']:g}", _threshold(first["threshold"])]
    finished = runs[~runs["diverged"]]
    if finished.empty:
        cell = f"diverged{steps}"
        return [*head, cell, cell, cell, cell, cell, cell, diverged_cell]
    r = config_statistics(finished).iloc[0]
    return [
        *head,
        mean_std(100 * r["final_test_acc_mean"], 100 * r["final_test_acc_std"], 1),
        mean_std(r["max_ratio_mean"], r["max_ratio_std"], 2),
        mean_std(r["final_ratio_mean"], r["final_ratio_std"], 2),
        mean_std(100 * r["frac_above_mean"], 100 * r["frac_above_std"], 0),
        mean_std(r.get("edge_ratio_median_mean"), r.get("edge_ratio_median_std"), 2),
        mean_std(r.get("loss_ratio_mean"), r.get("loss_ratio_std"), 3),
        diverged_cell,
    ]


def summary_table(summary: pd.DataFrame) -> str:
    """LaTeX ``tabular`` (booktabs) from the per-run summary frame of the aggregate stage."""
    sections = []
    for (dataset, model, loss), group in summary.groupby(["dataset", "model", "loss"], sort=True):
        rows = [_config_row(runs) for _, runs in group.groupby(["optimizer", "lr"], sort=True)]
        sections.append((f"{dataset}, {model}, {loss} loss", rows))
    return booktabs_table(HEADER, sections, align="llrrrrrrrr", notes=NOTES)
