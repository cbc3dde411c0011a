"""Table of the ODE-solving networks (systems stage): error, size and cost per problem."""

from __future__ import annotations

import numpy as np
import pandas as pd

from otgap.tables.latex import booktabs_table, tex_escape

COLUMNS = ("problem", "max_abs_error", "rms_error", "n_collocation", "n_params", "train_seconds")


def errors_table(frame: pd.DataFrame) -> str:
    """A booktabs tabular of ``errors.csv`` (columns ``COLUMNS``), one row per problem."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"errors table lacks the column(s) {missing}; it has {list(frame.columns)}")
    header = [
        "Problem",
        "max $|g - y|$",
        "RMS $(g - y)$",
        "collocation points",
        "parameters",
        "training (s)",
    ]
    rows = [
        [
            tex_escape(r.problem),
            f"${r.max_abs_error:.2e}$",
            f"${r.rms_error:.2e}$",
            f"{int(r.n_collocation)}",
            f"{int(r.n_params)}",
            f"{r.train_seconds:.1f}",
        ]
        for r in frame.itertuples()
    ]
    notes = [
        "Trial-solution networks g(t) = g0 + (t - t0) N(t) trained on the ODE residual alone;",
        "errors against the exact solution (decay, logistic, dydx) or DOP853 (FitzHugh-Nagumo).",
        "Parameters: one window's network; collocation points: all windows together.",
    ]
    return booktabs_table(header, [(None, rows)], notes=notes)


def a1_reference_table(frame: pd.DataFrame, model_order: list[str] | None = None) -> str:
    """Booktabs tabular of the A.1 known-physics comparison (``a1_reference/table.csv``).

    One section per system: the reference first (it knows the equations; no significance test,
    it is not a competitor), then the learned models, each with mean +- std over seeds of the
    errors on the reference's own starts and columns, and the training seconds per seed.
    """
    need = {
        "system",
        "model",
        "kind",
        "seed",
        "rmse",
        "normalised_rmse",
        "max_abs_error",
        "train_seconds",
        "n_points",
        "span",
        "n_starts",
    }
    missing = sorted(need - set(frame.columns))
    if missing:
        raise KeyError(f"A.1 reference table lacks the column(s) {missing}")
    header = [
        "Model",
        "RMSE",
        "RMSE / attractor std",
        "max $|\\hat y - y|$",
        "training (s)",
    ]
    sections = []
    for system, sub in frame.groupby("system", sort=False):
        rows = []
        order = ["reference"] + [m for m in (model_order or []) if m in set(sub["model"])]
        order += [m for m in dict.fromkeys(sub["model"]) if m not in order]
        for model in order:
            g = sub[sub["model"] == model]
            if g.empty:
                continue
            name = "known physics (trial solution)" if model == "reference" else model
            cells = [tex_escape(name)]
            for col in ("rmse", "normalised_rmse", "max_abs_error"):
                cells.append(_mean_std_sci(g[col]))
            cells.append(_mean_std_fixed(g["train_seconds"]))
            rows.append(cells)
        k, span, n = int(sub["n_points"].min()), float(sub["span"].max()), int(sub["n_starts"].max())
        sections.append(
            (f"{system}: first {n} rollouts, {k} points over {span:.3g} time units", rows)
        )
    notes = [
        "Known physics: trial-solution networks given the vector field, solved from each rollout's",
        "last context state; learned models: their own rollouts on the same starts and points.",
        "Mean +- std over seeds; reference training seconds cover its n starts together.",
        "A reference row, not a competitor: no significance test.",
    ]
    return booktabs_table(header, sections, notes=notes)


def _mean_std_sci(values: pd.Series) -> str:
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        return f"non-finite ({int(np.sum(~np.isfinite(v)))} of {len(v)})"
    m = float(v.mean())
    if len(v) < 2:
        return f"${m:.2e}$"
    return f"${m:.2e} \\pm {float(v.std(ddof=1)):.1e}$"


def _mean_std_fixed(values: pd.Series) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "--"
    return f"{float(v.mean()):.1f}" + (f" $\\pm$ {float(v.std(ddof=1)):.1f}" if v.size > 1 else "")
