"""Table of the ODE-solving networks (systems stage): error, size and cost per problem."""

from __future__ import annotations

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
