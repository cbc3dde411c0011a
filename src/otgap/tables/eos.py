"""The Edge-of-Stability summary table (booktabs LaTeX): per optimizer and learning rate, mean and
standard deviation over seeds of final test accuracy, max and final sharpness/threshold and the
fraction of measurements above the threshold, and how many seeds diverged."""

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
    "mean \\pm std over seeds; lambda_1/thr = sharpness over the optimizer's stability threshold",
    "(2/lr for GD/SGD, (2+2 beta)/lr with momentum, the preconditioned one for Adam/AdamW);",
    "above thr. = share of the sharpness measurements above it; edge = median of lambda_1/thr",
    "over the last third of the measurements; L_T/L_0 = final over initial training loss.",
    "Rule eos_table made this.",
)


def _threshold(value: float) -> str:
    return f"{value:.4g}" if value < 1000 else f"{value:.0f}"


def summary_table(summary: pd.DataFrame) -> str:
    """LaTeX ``tabular`` (booktabs) from the per-run summary frame of the aggregate stage."""
    stats = config_statistics(summary)
    sections = []
    for (dataset, model, loss), group in stats.groupby(["dataset", "model", "loss"], sort=True):
        rows = [
            [
                tex_escape(r["optimizer"]),
                f"{r['lr']:g}",
                _threshold(r["threshold"]),
                mean_std(100 * r["final_test_acc_mean"], 100 * r["final_test_acc_std"], 1),
                mean_std(r["max_ratio_mean"], r["max_ratio_std"], 2),
                mean_std(r["final_ratio_mean"], r["final_ratio_std"], 2),
                mean_std(100 * r["frac_above_mean"], 100 * r["frac_above_std"], 0),
                mean_std(r.get("edge_ratio_median_mean"), r.get("edge_ratio_median_std"), 2),
                mean_std(r.get("loss_ratio_mean"), r.get("loss_ratio_std"), 3),
                f"{int(r['n_diverged'])}/{int(r['n_seeds'])}",
            ]
            for _, r in group.sort_values(["optimizer", "lr"]).iterrows()
        ]
        sections.append((f"{dataset}, {model}, {loss} loss", rows))
    return booktabs_table(HEADER, sections, align="llrrrrrrrr", notes=NOTES)
