"""Generated parts of the A.1 section (FitzHugh-Nagumo): macros and the results table.

Reads the aggregate stage's ``stats.csv`` (one row per system, condition, model, metric with
``mean``, ``std``, ``significant``, ``n_nonfinite``) by column name; a missing column or row
gives ``n/a`` in the macro and cell instead of an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from otgap.paper.macros import MacroSet
from otgap.paper.numbers import MISSING, best_index, format_mean_std, format_value, mean_std_cell
from otgap.paper.tables import sectioned_table, table_float
from otgap.tables.latex import tex_escape

METRIC_TITLES = {
    "rmse_interp": "interpolation RMSE, held-out points",
    "rmse_extrap": "extrapolation RMSE, forecast horizon",
    "rmse_rollout": "rollout RMSE",
    "phase_divergence": "phase-space divergence",
    "vpt": "valid prediction time (Lyapunov times)",
}
HIGHER_IS_BETTER = {"vpt"}
MODEL_MACRO = {  # letters-only macro parts for the registry's names
    "neural_ode": "Node",
    "neural_ode_oracle": "Oracle",
    "tlstm": "Tlstm",
    "lstm_dt": "LstmDt",
    "odernn": "Odernn",
    "grud": "Grud",
    "last_observation": "LastObs",
}


def sparsest_condition(conditions: Sequence[Mapping[str, Any]]) -> str | None:
    """The condition with the fewest observations (then the most jitter)."""
    if not conditions:
        return None
    best = min(
        conditions,
        key=lambda c: (float(c.get("obs_fraction", 1.0)), -float(c.get("jitter", 0.0))),
    )
    return str(best["name"])


def _row(stats: pd.DataFrame | None, **match: str) -> pd.Series | None:
    if stats is None or not set(match) <= set(stats.columns):
        return None
    mask = np.ones(len(stats), dtype=bool)
    for k, v in match.items():
        mask &= stats[k].astype(str).to_numpy() == str(v)
    sub = stats[mask]
    return None if sub.empty else sub.iloc[0]


def _get(row: pd.Series | None, column: str) -> Any:
    if row is None or column not in row.index:
        return None
    return row[column]


def mean_pm_std(row: pd.Series | None) -> str:
    m, s = format_mean_std(_get(row, "mean"), _get(row, "std"))
    if m == MISSING:
        return MISSING
    return f"${m} \\pm {s}$" if s is not None else f"${m}$"


def fhn_macros(
    stats: pd.DataFrame | None,
    *,
    system: str,
    conditions: Sequence[Mapping[str, Any]],
    models: Sequence[str],
    reference: str,
    lyapunov: float | None,
    n_seeds: int,
) -> MacroSet:
    """Macros the A.1 prose cites (prefix ``Fhn``)."""
    ms = MacroSet(prefix="Fhn")
    names = [c["name"] for c in conditions]
    sparse = sparsest_condition(conditions)
    ms.add("System", tex_escape(system), "system of the numbers below")
    ms.add("NSeeds", str(n_seeds), "seeds per configuration")
    ms.add("NModels", str(len(models)), "models compared")
    ms.add("NConditions", str(len(names)), "sampling conditions")
    ms.add("Reference", tex_escape(reference), "model every other one is tested against")
    ms.add("Sparsest", tex_escape(sparse) if sparse else None, "condition with fewest observations")
    sparse_cfg = next((c for c in conditions if c["name"] == sparse), {})
    ms.add(
        "SparsestObsPercent",
        format_value(100 * float(sparse_cfg["obs_fraction"]), 3)
        if "obs_fraction" in sparse_cfg
        else None,
        "share of points observed in the sparsest condition, %",
    )
    ms.add(
        "Lyapunov",
        f"${format_value(lyapunov, 3)}$" if format_value(lyapunov) != MISSING else None,
        "largest Lyapunov exponent of the system, 1/time unit",
    )
    ms.add(
        "ModelList",
        ", ".join(f"\\texttt{{{tex_escape(m)}}}" for m in models) if models else None,
        "models of this run",
    )
    # every known model gets its macro, n/a when this run does not train it, so the text builds
    for model, part in MODEL_MACRO.items():
        row = None
        if model in models:
            row = _row(stats, system=system, condition=sparse, model=model, metric="rmse_interp")
        ms.add(f"{part}RmseSparsest", mean_pm_std(row), f"{model} interpolation RMSE, {sparse}")
    # best model at the sparsest condition (among rows with every seed finite)
    best = None
    if stats is not None and {"condition", "metric", "mean", "model"} <= set(stats.columns):
        sub = stats[
            (stats["system"].astype(str) == system)
            & (stats["condition"].astype(str) == str(sparse))
            & (stats["metric"] == "rmse_interp")
        ]
        if "n_nonfinite" in sub:
            sub = sub[sub["n_nonfinite"].fillna(0) == 0]
        i = best_index(list(sub["mean"]))
        if i is not None:
            best = str(sub.iloc[i]["model"])
    ms.add(
        "BestSparsest", tex_escape(best) if best else None, "lowest interpolation RMSE, sparsest"
    )
    n_sig = None
    if stats is not None and {"significant", "metric"} <= set(stats.columns):
        sub = stats[(stats["metric"] == "rmse_interp") & (stats["model"] != reference)]
        n_sig = f"{int(sub['significant'].astype(bool).sum())} of {len(sub)}"
    ms.add("NSignificant", n_sig, "model-condition pairs differing from the reference (Holm)")
    return ms


def fhn_table(
    stats: pd.DataFrame | None,
    *,
    system: str,
    metrics: Sequence[str],
    models: Sequence[str],
    conditions: Sequence[str],
    reference: str,
    provenance: str,
    label: str = "tab:fhn",
) -> str:
    """Table float: rows models, columns conditions, one section per metric."""
    need = {"system", "condition", "model", "metric", "mean", "std"}
    if stats is None or not need <= set(stats.columns):
        missing = "no aggregate table" if stats is None else sorted(need - set(stats.columns))
        body = f"\\emph{{A.1 results not available ({tex_escape(str(missing))}).}}"
        return f"\\begin{{table}}[htbp]\n\\centering\n{body}\n\\caption{{{provenance}}}\n\\label{{{label}}}\n\\end{{table}}\n"
    header = ["Model", *[tex_escape(c) for c in conditions]]
    sections = []
    for metric in metrics:
        sub = stats[(stats["system"].astype(str) == system) & (stats["metric"] == metric)]
        if sub.empty:
            continue
        rows_by_model = {m: [] for m in models}
        for c in conditions:
            col = [_row(sub, model=m, condition=c) for m in models]
            lost = [int(_get(r, "n_nonfinite") or 0) if r is not None else 0 for r in col]
            means = [
                _get(r, "mean") if r is not None and not lost[i] else None
                for i, r in enumerate(col)
            ]
            best = best_index(means, lower_is_better=metric not in HIGHER_IS_BETTER)
            for i, (m, r) in enumerate(zip(models, col, strict=True)):
                if r is None:
                    rows_by_model[m].append(MISSING)
                    continue
                mark = "^{\\dagger}" if m != reference and bool(_get(r, "significant")) else ""
                if lost[i]:
                    mark += f"^{{({lost[i]}\\,\\mathrm{{failed}})}}"
                rows_by_model[m].append(
                    mean_std_cell(_get(r, "mean"), _get(r, "std"), bold=best == i, mark=mark)
                )
        rows = [[tex_escape(m), *cells] for m, cells in rows_by_model.items()]
        sections.append((METRIC_TITLES.get(metric, metric), rows))
    if not sections:
        body = "\\emph{No A.1 statistics for this system.}"
        return f"\\begin{{table}}[htbp]\n\\centering\n{body}\n\\caption{{{provenance}}}\n\\label{{{label}}}\n\\end{{table}}\n"
    caption = (
        f"A.1, system \\texttt{{{tex_escape(system)}}}: mean $\\pm$ standard deviation over seeds "
        "(the standard deviation to two significant figures, the mean to the same decimal place). "
        "Bold: best mean of the column among cells whose seeds all gave finite values. "
        f"$\\dagger$: differs from \\texttt{{{tex_escape(reference)}}} in a paired $t$-test over "
        "seeds, Holm-corrected over the comparisons. (k failed): k seeds gave a non-finite value "
        "and are left out of the mean. " + provenance
    )
    return table_float(sectioned_table(header, sections), caption, label)
