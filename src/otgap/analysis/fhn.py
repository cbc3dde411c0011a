"""Aggregation of the A.1 runs: one tidy row per run, and statistics across seeds.

The statistics table has one row per (system, condition, model, metric): mean, std, n and the
95% t-interval over seeds, and, for every model other than the reference, the paired comparison
with the reference over seeds (t-test, Holm-adjusted across the models compared in that
system/condition/metric, Wilcoxon where n allows). The reference's own rows carry NaN there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from otgap.metrics.forecast import METRIC_NAMES
from otgap.metrics.stats import compare_with_reference, summary_table

KEY_COLUMNS = ("system", "condition", "model", "seed")


def metrics_frame(records: Iterable[tuple[Mapping[str, object], Mapping[str, float | None]]]):
    """DataFrame with KEY_COLUMNS then every metric (None in a metrics file becomes NaN)."""
    rows = []
    for keys, metrics in records:
        missing = [k for k in KEY_COLUMNS if k not in keys]
        if missing:
            raise KeyError(f"run keys lack {missing}: {dict(keys)}")
        row = {k: keys[k] for k in KEY_COLUMNS}
        for name in METRIC_NAMES:
            value = metrics.get(name)
            row[name] = np.nan if value is None else float(value)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*KEY_COLUMNS, *METRIC_NAMES])
    frame["seed"] = frame["seed"].astype(int)
    return frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def statistics(
    frame: pd.DataFrame,
    *,
    reference: str,
    metrics: Sequence[str] = METRIC_NAMES,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Summary over seeds merged with the paired tests against ``reference``."""
    groups = ["system", "condition", "model"]
    summary = summary_table(frame, metrics=metrics, group_cols=groups)
    if reference not in set(frame["model"]):
        raise ValueError(f"reference model '{reference}' has no runs; models: {sorted(set(frame['model']))}")
    tests = compare_with_reference(
        frame, reference=reference, metrics=metrics, group_cols=("system", "condition"), alpha=alpha
    ).drop(columns=["reference", "n"])
    out = summary.merge(tests, on=[*groups, "metric"], how="left")
    out["significant"] = out["significant"].fillna(False).astype(bool)
    out["note"] = out["note"].fillna("")
    out.insert(3, "reference", reference)
    return out.sort_values([*groups, "metric"], kind="stable").reset_index(drop=True)
