"""Aggregation of the A.1 runs: one tidy row per run, and statistics across seeds.

The statistics table has one row per (system, condition, model, metric): mean, std, n and the
95% t-interval over seeds, and, for every model other than the reference, the paired comparison
with the reference over seeds (t-test, Holm-adjusted across the models compared in that
system/condition/metric, Wilcoxon where n allows; no p-value from fewer than 3 seeds). The
reference's own rows carry NaN there.

Errors (``LOG_METRICS``: RMSEs, MAEs, distances, period errors) are positive and skewed, so their
paired tests run on log values (``mean_diff``, reference minus model, is then a mean log ratio
and ``ratio`` = exp(-mean_diff) the geometric-mean ratio model / reference), and their intervals are t-intervals of the log values
back-transformed around the geometric mean (``gmean``, ``gci_low``, ``gci_high``). Times (vpt,
time_in_band) are tested on their own scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from otgap.metrics.forecast import METRIC_NAMES
from otgap.metrics.stats import compare_with_reference, summarise_log, summary_table

KEY_COLUMNS = ("system", "condition", "model", "seed")
LOG_METRICS = frozenset(
    {
        "rmse_interp", "mae", "rmse_extrap", "mae_extrap", "rmse_rollout", "mae_rollout",
        "phase_divergence", "orbit_distance", "period_error", "rmse_rollout_unseen",
        "orbit_distance_unseen", "period_error_unseen",
    }
)
NOT_TESTED = frozenset({"rmse_saturation", "max_abs_rollout"})


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
    geo = []
    for keys, grp in frame.groupby(groups, sort=True):
        for metric in metrics:
            if metric in LOG_METRICS:
                geo.append({**dict(zip(groups, keys, strict=True)), "metric": metric,
                            **summarise_log(grp[metric].to_numpy(float))})
    if geo:
        summary = summary.merge(pd.DataFrame(geo), on=[*groups, "metric"], how="left")
    logged = frame.copy()
    for metric in metrics:
        if metric in LOG_METRICS:
            x = logged[metric].to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                logged[metric] = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    tested = [m for m in metrics if m not in NOT_TESTED]
    tests = compare_with_reference(
        logged, reference=reference, metrics=tested, group_cols=("system", "condition"), alpha=alpha
    ).drop(columns=["reference", "n"])
    tests["scale"] = np.where(tests["metric"].isin(LOG_METRICS), "log", "linear")
    # mean_diff is reference minus model (of logs for errors): ratio = model / reference
    tests["ratio"] = np.where(tests["scale"] == "log", np.exp(-tests["mean_diff"]), np.nan)
    out = summary.merge(tests, on=[*groups, "metric"], how="left")
    out["significant"] = out["significant"].fillna(False).astype(bool)
    out["note"] = out["note"].fillna("")
    out.insert(3, "reference", reference)
    return out.sort_values([*groups, "metric"], kind="stable").reset_index(drop=True)
