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

from otgap.metrics.a1 import FLOOR_OF
from otgap.metrics.a1 import HIGHER_IS_BETTER as A1_HIGHER_IS_BETTER
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
# directions, floors and references are declared once (otgap.metrics.a1, otgap.analysis.fhn)
HIGHER_IS_BETTER = A1_HIGHER_IS_BETTER
REFERENCE_MODELS = frozenset({"neural_ode_oracle", "last_observation"})  # = analysis.fhn's (test)
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
        # "best" is a learned model whose cell is not undertrained (references never); where an
        # undertrained cell would beat it, the ranking is undecided
        sub = sub[~sub["model"].astype(str).isin(REFERENCE_MODELS)]
        under = (
            sub["undertrained"].fillna(False).astype(bool)
            if "undertrained" in sub
            else pd.Series(False, index=sub.index)
        )
        done = sub[~under]
        i = best_index(list(done["mean"]))
        if i is not None:
            best = str(done.iloc[i]["model"])
            rival = best_index([done.iloc[i]["mean"], *sub[under]["mean"]])
            if rival not in (0, None):
                best = "undecided (undertrained cells)"
    ms.add(
        "BestSparsest",
        tex_escape(best) if best else None,
        "lowest interpolation RMSE, sparsest, among learned models not undertrained",
    )
    n_under = None
    if stats is not None and "undertrained" in stats.columns:
        cells = stats[stats["system"].astype(str) == system].drop_duplicates(["condition", "model"])
        flagged = cells[cells["undertrained"].fillna(False).astype(bool)]
        n_under = (
            ", ".join(f"\\texttt{{{tex_escape(f'{m}/{c}')}}}" for m, c in
                      zip(flagged["model"], flagged["condition"], strict=True))
            or "none"
        )  # fmt: skip
    ms.add("Undertrained", n_under, "cells with > 10% late-best runs (not ranked)")
    n_sig = None
    if stats is not None and {"significant", "metric"} <= set(stats.columns):
        sub = stats[
            (stats["metric"] == "rmse_interp")
            & (stats["model"] != reference)
            & ~stats["model"].astype(str).isin(REFERENCE_MODELS)
        ]
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
                _get(r, "mean")
                if r is not None and not lost[i] and models[i] not in REFERENCE_MODELS
                and not bool(_get(r, "undertrained") or False)
                else None
                for i, r in enumerate(col)
            ]  # fmt: skip
            best = best_index(means, lower_is_better=metric not in HIGHER_IS_BETTER)
            # an undertrained learned cell that would beat it: ranking undecided, no bold
            rivals = [
                _get(r, "mean")
                for i, r in enumerate(col)
                if r is not None and not lost[i] and models[i] not in REFERENCE_MODELS
                and bool(_get(r, "undertrained") or False)
            ]  # fmt: skip
            if best is not None and best_index(
                [means[best], *rivals], lower_is_better=metric not in HIGHER_IS_BETTER
            ) not in (0, None):
                best = None
            for i, (m, r) in enumerate(zip(models, col, strict=True)):
                if r is None:
                    rows_by_model[m].append(MISSING)
                    continue
                mark = "^{\\dagger}" if m != reference and bool(_get(r, "significant")) else ""
                if lost[i]:
                    mark += f"^{{({lost[i]}\\,\\mathrm{{failed}})}}"
                if bool(_get(r, "undertrained") or False):
                    mark += "^{u}"
                rows_by_model[m].append(
                    mean_std_cell(_get(r, "mean"), _get(r, "std"), bold=best == i, mark=mark)
                )
        rows = [
            [tex_escape(m) + (" (ref.)" if m in REFERENCE_MODELS else ""), *cells]
            for m, cells in rows_by_model.items()
        ]
        floor = FLOOR_OF.get(metric)
        if floor is not None:
            fsub = stats[(stats["system"].astype(str) == system) & (stats["metric"] == floor)]
            cells = []
            for c in conditions:
                v = fsub[fsub["condition"].astype(str) == str(c)]["mean"]
                cells.append(mean_std_cell(float(v.mean()), None) if len(v) else MISSING)
            rows.append(["truth (floor)", *cells])
        sections.append((METRIC_TITLES.get(metric, metric), rows))
    if not sections:
        body = "\\emph{No A.1 statistics for this system.}"
        return f"\\begin{{table}}[htbp]\n\\centering\n{body}\n\\caption{{{provenance}}}\n\\label{{{label}}}\n\\end{{table}}\n"
    caption = (
        f"A.1, system \\texttt{{{tex_escape(system)}}}: mean $\\pm$ standard deviation over seeds "
        "(the standard deviation to two significant figures, the mean to the same decimal place). "
        "Bold: best mean of the column among learned models' cells whose seeds all gave finite "
        "values and that are not undertrained ($u$: more than 10\\% of the runs had their best "
        "validation epoch in the last 10\\% of the epoch bound). (ref.): references outside the "
        "tests, never bold. truth (floor): the true rollouts' own score on the same windows. "
        f"$\\dagger$: differs from \\texttt{{{tex_escape(reference)}}} in a paired $t$-test over "
        "seeds, Holm-corrected over the comparisons. (k failed): k seeds gave a non-finite value "
        "and are left out of the mean. " + provenance
    )
    return table_float(sectioned_table(header, sections), caption, label)
