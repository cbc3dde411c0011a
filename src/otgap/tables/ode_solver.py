"""Table of the ODE-solving networks (systems stage): error, size and cost per problem."""

from __future__ import annotations

import numpy as np
import pandas as pd

from otgap.tables.latex import booktabs_table, tex_escape

COLUMNS = (
    "problem",
    "method",
    "tolerance",
    "n_seeds",
    "median_max_abs_error",
    "worst_max_abs_error",
    "worst_seed",
    "max_error_estimate",
    "n_failed",
    "median_windows",
    "n_params",
    "median_seconds",
)


def summary_rows(metrics: dict) -> list[dict]:
    """The two rows of one problem from its ``metrics.json``: the networks over seeds (median and
    worst max abs error, the seed of the worst, the largest error estimate, how many seeds missed
    the tolerance, median windows and training seconds per seed) and the classical solver."""
    seeds = metrics["seeds"]
    if not seeds:
        raise ValueError(f"metrics of problem '{metrics.get('problem')}' hold no seeds")
    err = np.asarray([r["max_abs_error"] for r in seeds], dtype=float)
    worst = int(np.argmax(np.where(np.isfinite(err), err, np.inf)))
    tol = metrics.get("tol")
    c = metrics["classical"]
    return [
        {
            "problem": metrics["problem"],
            "method": "network",
            "tolerance": "none" if tol is None else f"tol {float(tol):g}",
            "n_seeds": len(seeds),
            "median_max_abs_error": float(np.median(err)),
            "worst_max_abs_error": float(err[worst]),
            "worst_seed": str(int(seeds[worst]["seed"])),
            "max_error_estimate": float(max(r["error_estimate"] for r in seeds)),
            "n_failed": int(sum(int(r["failed"]) for r in seeds)),
            "median_windows": float(np.median([r["n_windows"] for r in seeds])),
            "n_params": int(seeds[0]["n_params"]),
            "median_seconds": float(np.median([r["train_seconds"] for r in seeds])),
        },
        {
            "problem": metrics["problem"],
            "method": c["method"],
            "tolerance": f"rtol {c['rtol']:g}, atol {c['atol']:g}",
            "n_seeds": 1,
            "median_max_abs_error": float(c["max_abs_error"]),
            "worst_max_abs_error": float(c["max_abs_error"]),
            "worst_seed": "--",
            "max_error_estimate": float("nan"),
            "n_failed": 0,
            "median_windows": float("nan"),
            "n_params": 0,
            "median_seconds": float(c["seconds"]),
        },
    ]


def errors_table(frame: pd.DataFrame) -> str:
    """A booktabs tabular of ``errors.csv`` (columns ``COLUMNS``): per problem, the networks over
    seeds and the classical solver."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"errors table lacks the column(s) {missing}; it has {list(frame.columns)}")
    header = [
        "Problem",
        "method",
        "seeds",
        "median max $|g - y|$",
        "worst (seed)",
        "max estimate",
        "failed",
        "windows",
        "parameters",
        "seconds",
    ]
    rows = []
    for r in frame.itertuples():
        network = r.method == "network"
        failed = int(r.n_failed)
        rows.append(
            [
                tex_escape(r.problem),
                tex_escape(f"{r.method} ({r.tolerance})"),
                f"{int(r.n_seeds)}",
                _sci(r.median_max_abs_error),
                f"{_sci(r.worst_max_abs_error)} ({tex_escape(str(r.worst_seed))})"
                if network
                else _sci(r.worst_max_abs_error),
                _sci(r.max_error_estimate) if network else "--",
                (f"\\textbf{{{failed}}}" if failed else "0") if network else "--",
                f"{r.median_windows:g}" if network else "--",
                f"{int(r.n_params)}" if network else "--",
                f"{r.median_seconds:.3g}",
            ]
        )
    notes = [
        "Trial-solution networks g(t) = g0 + (t - t0) N(t) trained on the ODE residual alone,",
        "from every seed; errors against the exact solution (decay, logistic, dydx) or DOP853 at",
        "rtol = atol = 1e-12 (the oscillators). Estimate: the solver's own a-posteriori error",
        "estimate (defect integrated along each window); failed: seeds whose estimate missed the",
        "tolerance. Parameters: one window's network; seconds: median per seed (networks,",
        "training) or the fastest of 5 solves (classical solver).",
    ]
    return booktabs_table(header, [(None, rows)], notes=notes)


def _sci(x: float) -> str:
    return f"${float(x):.2e}$" if np.isfinite(float(x)) else "--"


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
        k, span, n = (
            int(sub["n_points"].min()),
            float(sub["span"].max()),
            int(sub["n_starts"].max()),
        )
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
