"""The A.1 summary table: mean +- std over seeds per model and sampling condition."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from otgap.tables.latex import booktabs_table, mean_std, tex_escape

METRIC_TITLES = {
    "rmse_interp": "interpolation RMSE (held-out points)",
    "rmse_extrap": "extrapolation RMSE (forecast horizon)",
    "rmse_rollout": "rollout RMSE",
    "phase_divergence": "phase-space divergence",
    "vpt": "valid prediction time (Lyapunov times)",
}
LOWER_IS_BETTER = {"vpt": False}


def summary_table(
    stats: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("rmse_interp", "rmse_extrap"),
    models: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    reference: str = "neural_ode",
    digits: int = 3,
) -> str:
    """LaTeX tabular from the aggregate stage's ``stats.csv`` frame.

    Rows are models, columns conditions, one section per (system, metric). The best mean of each
    column is bold; a dagger marks a model whose difference from ``reference`` is significant
    after Holm's correction (paired t-test over seeds, ``significant`` column).
    """
    need = {"system", "condition", "model", "metric", "mean", "std", "significant"}
    missing = need - set(stats.columns)
    if missing:
        raise KeyError(f"stats frame lacks column(s) {sorted(missing)}")
    models = list(models) if models is not None else sorted(stats["model"].unique())
    conditions = (
        list(conditions) if conditions is not None else sorted(stats["condition"].unique())
    )
    header = ["Model", *[tex_escape(c) for c in conditions]]
    sections = []
    for system in sorted(stats["system"].unique()):
        for metric in metrics:
            sub = stats[(stats["system"] == system) & (stats["metric"] == metric)]
            if sub.empty or not np.isfinite(sub["mean"].to_numpy(float)).any():
                continue
            cell = sub.set_index(["model", "condition"])
            # a cell whose mean lost seeds (non-finite metric, e.g. a blown-up rollout) is marked
            # with its n and can never be "best": dropping failures must not flatter a model
            complete = (
                sub["n_nonfinite"].to_numpy(float) == 0
                if "n_nonfinite" in sub
                else np.ones(len(sub), dtype=bool)
            )
            best = {}
            for c in conditions:
                col = sub[(sub["condition"] == c) & complete]["mean"].to_numpy(float)
                col = col[np.isfinite(col)]
                if col.size:
                    lower = LOWER_IS_BETTER.get(metric, True)
                    best[c] = col.min() if lower else col.max()
            rows = []
            for m in models:
                row = [tex_escape(m)]
                for c in conditions:
                    if (m, c) not in cell.index:
                        row.append("--")
                        continue
                    r = cell.loc[(m, c)]
                    sig = m != reference and bool(r["significant"])
                    lost = int(r["n_nonfinite"]) if "n_nonfinite" in r.index else 0
                    mark = "^{\\dagger}" if sig else ""
                    if lost:
                        mark += f"^{{({lost}\\,\\mathrm{{failed}})}}"
                    row.append(
                        mean_std(
                            float(r["mean"]),
                            float(r["std"]),
                            digits,
                            bold=not lost and c in best and float(r["mean"]) == best[c],
                            mark=mark,
                        )
                    )
                rows.append(row)
            title = f"{system}: {METRIC_TITLES.get(metric, metric)}"
            sections.append((title, rows))
    if not sections:
        raise ValueError("no finite statistics to tabulate")
    notes = [
        "Mean +- std over seeds. Bold: best mean per column among cells with every seed finite.",
        "(k failed): k seeds gave a non-finite value (e.g. a rollout that blew up) and are left out.",
        f"Dagger: differs from {reference} (paired t-test over seeds, Holm-corrected p < 0.05).",
    ]
    return booktabs_table(header, sections, notes=notes)
