""" "What the corrections change": this run's key numbers beside the original-settings run's.

Both runs' aggregate tables are read when present; a run whose tables are missing is shown as
"not run" in every cell, so the section builds before (or without) the original run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from otgap.paper.eos import share_above
from otgap.paper.fhn import _row, mean_pm_std
from otgap.paper.macros import MacroSet
from otgap.paper.numbers import MISSING, format_percent, format_value
from otgap.paper.tables import table_float
from otgap.tables.latex import booktabs_table, tex_escape

NOT_RUN = "not run"


def _fhn_cell(stats: pd.DataFrame | None, model: str, condition: str, metric: str) -> str:
    if stats is None:
        return NOT_RUN
    row = None
    for system in sorted(set(stats.get("system", pd.Series(dtype=str)).astype(str))):
        row = _row(stats, system=system, model=model, condition=condition, metric=metric)
        if row is not None:
            break
    return mean_pm_std(row)


def _eos_share(summary: pd.DataFrame | None, optimizer: str) -> str:
    if summary is None:
        return NOT_RUN
    share = share_above(summary, optimizer)
    return MISSING if share is None else format_percent(share)


def _eos_acc(summary: pd.DataFrame | None, optimizer: str) -> str:
    if summary is None:
        return NOT_RUN
    if not {"optimizer", "final_test_acc"} <= set(summary):
        return MISSING
    acc = pd.to_numeric(
        summary.loc[summary["optimizer"] == optimizer, "final_test_acc"], errors="coerce"
    ).dropna()
    return MISSING if acc.empty else format_percent(float(acc.mean()))


def _lyap(value: float | None, present: bool) -> str:
    if not present:
        return NOT_RUN
    text = format_value(value)
    return text if text == MISSING else f"${text}$"


def comparison_rows(
    runs: Mapping[str, Mapping[str, Any]],
    *,
    models: Sequence[str],
    condition: str,
    optimizers: Sequence[str],
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per key quantity, one column per run (corrected first).

    ``runs[name]`` holds ``fhn_stats`` and ``eos_summary`` frames (or None) and ``lyapunov``
    (float or None) with ``has_lyapunov``.
    """
    names = list(runs)
    header = ["Quantity", *[f"run \\texttt{{{tex_escape(n)}}}" for n in names]]
    rows = []
    rows.append(
        [
            "largest Lyapunov exponent",
            *[_lyap(runs[n].get("lyapunov"), runs[n].get("has_lyapunov", False)) for n in names],
        ]
    )
    for metric, what in (("rmse_interp", "interpolation RMSE"), ("rmse_rollout", "rollout RMSE")):
        for model in models:
            rows.append(
                [
                    f"{tex_escape(model)}: {what}, {tex_escape(condition)}",
                    *[_fhn_cell(runs[n].get("fhn_stats"), model, condition, metric) for n in names],
                ]
            )
    for opt in optimizers:
        rows.append(
            [
                f"{tex_escape(opt)}: sharpness measurements above threshold (\\%)",
                *[_eos_share(runs[n].get("eos_summary"), opt) for n in names],
            ]
        )
        rows.append(
            [
                f"{tex_escape(opt)}: final test accuracy (\\%)",
                *[_eos_acc(runs[n].get("eos_summary"), opt) for n in names],
            ]
        )
    return header, rows


def comparison_table(
    runs: Mapping[str, Mapping[str, Any]],
    *,
    models: Sequence[str],
    condition: str,
    optimizers: Sequence[str],
    provenance: str,
    label: str = "tab:compare",
) -> str:
    header, rows = comparison_rows(runs, models=models, condition=condition, optimizers=optimizers)
    caption = (
        "Key numbers of this run beside the run with the original code's settings (mean "
        "$\\pm$ standard deviation over seeds; ``not run'': that run's aggregate tables do not "
        "exist; n/a: the run exists but lacks the quantity). " + provenance
    )
    return table_float(
        booktabs_table(header, [(None, rows)], align="l" + "r" * len(runs)), caption, label
    )


def comparison_macros(runs: Mapping[str, Mapping[str, Any]], other: str) -> MacroSet:
    ms = MacroSet(prefix="Cmp")
    ms.add("OtherRun", tex_escape(other), "run with the original code's settings")
    present = runs.get(other, {})
    ran = present.get("fhn_stats") is not None or present.get("eos_summary") is not None
    ms.add("OtherStatus", "present" if ran else NOT_RUN, "whether that run's tables exist")
    return ms
