"""The A.1 summary table: per model and sampling condition, over seeds.

Errors (``LOG_METRICS``) are shown as the geometric mean with its back-transformed 95% t-interval
``[lo, hi]`` (the interval of the log values), times as mean +- std. A rollout RMSE at or above 80% of
the saturation level sqrt(var_v + var_w) is marked ``s``: it says only that the phase was lost.

Protocol marks (docs/a1_protocol.md): every attractor metric has a ``truth (floor)`` row, the true
rollouts' own score on the same windows; the references (``REFERENCE_MODELS``: the oracle and the
last-observation baseline) are labelled and never bold; a cell whose share of late-best runs
exceeds ``UNDERTRAINED_SHARE`` is marked ``u`` (undertrained) and never bold; metric directions
come from ``otgap.metrics.a1``; metrics in ``TABLE_EXCLUDED`` are skipped with a note. A first
section gives each model's parameter count and trained learning rate per condition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from otgap.analysis.fhn import LOG_METRICS, REFERENCE_MODELS, UNDERTRAINED_SHARE
from otgap.metrics.a1 import FLOOR_OF, TABLE_EXCLUDED, lower_is_better
from otgap.tables.latex import booktabs_table, mean_std, tex_escape

SATURATION_FRACTION = 0.8

METRIC_TITLES = {
    "rmse_interp": "interpolation RMSE (held-out points)",
    "rmse_extrap": "extrapolation RMSE (forecast horizon)",
    "rmse_rollout": "rollout RMSE",
    "phase_divergence": "phase-space divergence",
    "vpt": "valid prediction time (Lyapunov times)",
    "orbit_distance": "symmetric orbit distance (scaled v, w)",
    "period_error": "relative period error",
    "time_in_band": "time within the attractor's band (periods)",
    "rmse_rollout_unseen": "rollout RMSE, unseen gaps (jitter 0.45)",
    "orbit_distance_unseen": "orbit distance, unseen gaps (jitter 0.45)",
    "period_error_unseen": "relative period error, unseen gaps (jitter 0.45)",
}
REFERENCE_LABEL = "(reference)"
FLOOR_LABEL = "truth (floor)"


def _geo_cell(r, digits: int, bold: bool, mark: str) -> str:
    g, lo, hi = (float(r.get(k, np.nan)) for k in ("gmean", "gci_low", "gci_high"))
    if not np.isfinite(g):
        return "--"
    body = f"{g:.{digits}f}"
    if bold:
        body = f"\\mathbf{{{body}}}"
    interval = f"\\,[{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(lo) else ""
    return f"${body}{mark}{interval}$"


def summary_table(
    stats: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("rmse_interp", "rmse_extrap"),
    models: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    reference: str = "neural_ode",
    digits: int = 3,
    exclude_systems: Sequence[str] = (),
    tuning: pd.DataFrame | None = None,
) -> str:
    """LaTeX tabular from the aggregate stage's ``stats.csv`` frame.

    Rows are models, columns conditions, one section per (system, metric). The best (geometric)
    mean of each column is bold; a dagger marks a model whose difference from ``reference`` is
    significant after Holm's correction (paired t-test over seeds, on log values for errors,
    ``significant`` column). Systems in ``exclude_systems`` are left out (the forced system while
    its models do not see the drive's phase).
    """
    need = {"system", "condition", "model", "metric", "mean", "std", "significant"}
    missing = need - set(stats.columns)
    if missing:
        raise KeyError(f"stats frame lacks column(s) {sorted(missing)}")
    models = list(models) if models is not None else sorted(stats["model"].unique())
    conditions = list(conditions) if conditions is not None else sorted(stats["condition"].unique())
    header = ["Model", *[tex_escape(c) for c in conditions]]
    sections = []
    n_families = 0
    n_compared = 0
    excluded = [m for m in metrics if m in TABLE_EXCLUDED]
    metrics = [m for m in metrics if m not in TABLE_EXCLUDED]
    systems = sorted(set(stats["system"].unique()) - set(exclude_systems))
    n_under = 0

    def label(m: str) -> str:
        return tex_escape(m) + (f" {REFERENCE_LABEL}" if m in REFERENCE_MODELS else "")

    def undertrained(r) -> bool:
        return "undertrained" in r.index and bool(r["undertrained"])

    for system in systems:
        if "n_params" in stats:
            run = stats[(stats["system"] == system) & (stats["metric"] == metrics[0])]
            cell = run.set_index(["model", "condition"])
            rows = []
            for m in models:
                row = [label(m)]
                for c in conditions:
                    if (m, c) not in cell.index:
                        row.append("--")
                        continue
                    r = cell.loc[(m, c)]
                    n_p = float(r.get("n_params", np.nan))
                    lr = float(r.get("lr", np.nan)) if "lr" in r.index else np.nan
                    text = f"{int(n_p):,}".replace(",", "\\,") if np.isfinite(n_p) else "--"
                    if np.isfinite(lr):
                        text += f" / {lr:g}"
                    share = float(r.get("late_best_share", np.nan))
                    if np.isfinite(share):
                        text += f" / {100 * share:.0f}\\%"
                    row.append(text)
                rows.append(row)
            sections.append((f"{system}: parameters / learning rate / late-best runs", rows))
        for metric in metrics:
            sub = stats[(stats["system"] == system) & (stats["metric"] == metric)]
            use_geo = metric in LOG_METRICS and "gmean" in sub
            value_col = "gmean" if use_geo else "mean"
            sat = stats[(stats["system"] == system) & (stats["metric"] == "rmse_saturation")]
            sat_level = float(sat["mean"].iloc[0]) if len(sat) else np.nan
            if sub.empty or not np.isfinite(sub["mean"].to_numpy(float)).any():
                continue
            cell = sub.set_index(["model", "condition"])
            # a cell whose mean lost seeds (non-finite metric, e.g. a blown-up rollout) is marked
            # with its n and can never be "best": dropping failures must not flatter a model;
            # neither can a reference or an undertrained cell
            eligible = (
                sub["n_nonfinite"].to_numpy(float) == 0
                if "n_nonfinite" in sub
                else np.ones(len(sub), dtype=bool)
            )
            eligible &= ~sub["model"].isin(REFERENCE_MODELS).to_numpy()
            if "undertrained" in sub:
                eligible &= ~sub["undertrained"].fillna(False).astype(bool).to_numpy()
            under = np.zeros(len(sub), dtype=bool)
            if "undertrained" in sub:
                under = (
                    sub["undertrained"].fillna(False).astype(bool).to_numpy()
                    & ~sub["model"].isin(REFERENCE_MODELS).to_numpy()
                )
            best = {}
            for c in conditions:
                col = sub[(sub["condition"] == c) & eligible][value_col].to_numpy(float)
                col = col[np.isfinite(col)]
                if col.size:
                    best[c] = col.min() if lower_is_better(metric) else col.max()
                # an undertrained cell that would beat it leaves the ranking undecided: no bold
                rival = sub[(sub["condition"] == c) & under][value_col].to_numpy(float)
                rival = rival[np.isfinite(rival)]
                if c in best and rival.size:
                    beats = rival < best[c] if lower_is_better(metric) else rival > best[c]
                    if beats.any():
                        del best[c]
            if not sub.empty:
                n_families += sub["condition"].nunique()
                learned = [m for m in models if m != reference and m not in REFERENCE_MODELS]
                n_compared = max(n_compared, len(learned))
            rows = []
            for m in models:
                row = [label(m)]
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
                    if undertrained(r):
                        mark += "^{u}"
                        n_under += 1
                    value = float(r[value_col])
                    if (
                        metric.startswith("rmse_rollout")
                        and value >= SATURATION_FRACTION * sat_level
                    ):
                        mark += "^{s}"
                    bold = (
                        not lost and m not in REFERENCE_MODELS and not undertrained(r)
                        and c in best and value == best[c]
                    )  # fmt: skip
                    if use_geo:
                        row.append(_geo_cell(r, digits, bold, mark))
                    else:
                        row.append(mean_std(value, float(r["std"]), digits, bold=bold, mark=mark))
                rows.append(row)
            floor = FLOOR_OF.get(metric)
            if floor is not None:
                fsub = stats[(stats["system"] == system) & (stats["metric"] == floor)]
                fcell = fsub.groupby("condition")["mean"].mean()
                rows.append(
                    [FLOOR_LABEL]
                    + [
                        mean_std(float(fcell[c]), None, digits) if c in fcell.index else "--"
                        for c in conditions
                    ]
                )
            title = f"{system}: {METRIC_TITLES.get(metric, metric)}"
            sections.append((title, rows))
    if not sections:
        raise ValueError("no finite statistics to tabulate")
    notes = [
        "Errors: geometric mean over seeds [back-transformed 95% t-interval of the log values];",
        "times: mean +- std. Bold: best per column among cells with every seed finite.",
        "(k failed): k seeds gave a non-finite value (e.g. no oscillation to time) and are left out.",
        f"Dagger: differs from {reference} (paired t-test over seeds on log values for errors;",
        f"no p-value from fewer than 3 seeds). Multiplicity: Holm over the {n_compared} models",
        f"compared with {reference} within each of the {n_families} (system, condition, metric)",
        "families shown; no correction across families.",
        f"s: rollout RMSE >= {SATURATION_FRACTION:g} x the saturation level sqrt(var_v + var_w)",
        "(the phase is lost; see orbit distance and period error for staying on the attractor).",
        f"{REFERENCE_LABEL}: oracle / last-observation references, outside the tests, never bold.",
        f"{FLOOR_LABEL}: the true rollouts' own score on the same windows (mean over seeds).",
        f"u: undertrained cell (> {100 * UNDERTRAINED_SHARE:g}% of its runs have their best",
        "validation epoch in the last 10% of the epoch bound): not ranked; a column where an",
        "undertrained cell beats every converged one has no bold (ranking undecided).",
        "Parameters / learning rate / late-best runs: per model and condition.",
    ]
    if n_under:
        notes.append(f"{n_under} cells of the metric blocks are marked undertrained.")
    for m in excluded:
        notes.append(f"{m} is not tabulated: {TABLE_EXCLUDED[m]}.")
    if tuning is not None and len(tuning):
        notes.append("lr chosen on validation data (grid -> choice; * at the grid's edge):")
        for r in tuning.itertuples(index=False):
            edge = " *" if bool(r.at_edge) else ""
            notes.append(
                f"  {r.system}/{r.condition}/{r.model}: {r.grid} -> {float(r.chosen_lr):g}{edge}"
            )
    elif "lr" in stats:
        notes.append("lr: one shared value for every learned model (no tuning).")
    if exclude_systems:
        notes.append(
            f"Left out: {', '.join(exclude_systems)} (models do not see the drive's phase)."
        )
    return booktabs_table(header, sections, notes=notes)
