"""The Edge-of-Stability summary table (booktabs LaTeX): per optimizer and learning rate, mean and
standard deviation over seeds of final test accuracy, max and final sharpness/threshold and the
fraction of measurements above the threshold, and how many seeds diverged."""

from __future__ import annotations

import math

import pandas as pd

from otgap.analysis.eos import config_statistics


def _tex_escape(text: str) -> str:
    return str(text).replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``$m \\pm s$`` in math mode; ``--`` for a missing mean, no ``\\pm`` for a single seed."""
    if mean is None or not math.isfinite(mean):
        return "--"
    if std is None or not math.isfinite(std):
        return f"${mean:.{digits}f}$"
    return f"${mean:.{digits}f} \\pm {std:.{digits}f}$"


def summary_table(summary: pd.DataFrame) -> str:
    """LaTeX ``tabular`` (booktabs) from the per-run summary frame of the aggregate stage."""
    stats = config_statistics(summary)
    header = (
        r"Optimizer & $\eta$ & Threshold & Test acc.\ (\%) & max $\lambda_1/\mathrm{thr}$ & "
        r"final $\lambda_1/\mathrm{thr}$ & Above thr.\ (\%) & Diverged \\"
    )
    lines = [r"\begin{tabular}{llrrrrrr}", r"\toprule", header]
    for (dataset, model, loss), group in stats.groupby(["dataset", "model", "loss"], sort=True):
        lines += [
            r"\midrule",
            rf"\multicolumn{{8}}{{l}}{{\textit{{{_tex_escape(dataset)}, {_tex_escape(model)}, "
            rf"{_tex_escape(loss)} loss}}}} \\",
            r"\midrule",
        ]
        for _, r in group.sort_values(["optimizer", "lr"]).iterrows():
            cells = [
                _tex_escape(r["optimizer"]),
                f"{r['lr']:g}",
                f"{r['threshold']:.4g}" if r["threshold"] < 1000 else f"{r['threshold']:.0f}",
                mean_std(100 * r["final_test_acc_mean"], 100 * r["final_test_acc_std"], 1),
                mean_std(r["max_ratio_mean"], r["max_ratio_std"]),
                mean_std(r["final_ratio_mean"], r["final_ratio_std"]),
                mean_std(100 * r["frac_above_mean"], 100 * r["frac_above_std"], 0),
                f"{int(r['n_diverged'])}/{int(r['n_seeds'])}",
            ]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
