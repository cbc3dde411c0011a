"""Aggregation of the A.1 runs: one tidy row per run, and statistics across seeds.

The statistics table has one row per (system, condition, model, metric): mean, std, n and the
95% t-interval over seeds, and, for every model other than the reference, the paired comparison
with the reference over seeds (t-test, Holm-adjusted across the models compared in that
system/condition/metric, Wilcoxon where n allows; no p-value from fewer than 3 seeds). The
reference's own rows carry NaN there.

References (``REFERENCE_MODELS``: the oracle that regresses the true field and the
last-observation baseline) are summarised but stay outside the significance families: the Holm
families hold the learned models compared with the reference only, so a reference can neither
use up nor win a comparison (their test columns are NaN, and tables never call them "best").

Convergence: where the frame carries each run's ``best_epoch`` and ``epoch_bound`` (from its
run.json), a run is *late-best* when its best validation epoch lies in the last
``LATE_FRACTION`` of the bound; per (system, condition, model) ``late_best_share`` is their share
and ``undertrained`` is set above ``UNDERTRAINED_SHARE`` (such a cell is shown, marked, and not
ranked). ``n_params`` and ``lr`` (the trained learning rate; tuned or shared) are carried per cell.

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

from otgap.metrics.a1 import FLOORS
from otgap.metrics.forecast import METRIC_NAMES
from otgap.metrics.stats import compare_with_reference, summarise_log, summary_table

KEY_COLUMNS = ("system", "condition", "model", "seed")
LOG_METRICS = frozenset(
    {
        "rmse_interp",
        "mae",
        "rmse_extrap",
        "mae_extrap",
        "rmse_rollout",
        "mae_rollout",
        "phase_divergence",
        "orbit_distance",
        "period_error",
        "rmse_rollout_unseen",
        "orbit_distance_unseen",
        "period_error_unseen",
        *FLOORS,
    }
)
NOT_TESTED = frozenset({"rmse_saturation", "max_abs_rollout", *FLOORS})
# references beside the learned models: never in a significance family, never "best"
REFERENCE_MODELS = frozenset({"neural_ode_oracle", "last_observation"})
RUN_COLUMNS = ("best_epoch", "epoch_bound", "n_params", "lr")  # from each run's run.json
LATE_FRACTION = 0.1  # best epoch in the last 10 % of the epoch bound: late-best
UNDERTRAINED_SHARE = 0.1  # a cell with more late-best runs than this is undertrained


def late_best(best_epoch, epoch_bound) -> np.ndarray:
    """Whether each run's best validation epoch lies in the last LATE_FRACTION of its bound
    (NaN where either is unknown, e.g. an untrained baseline)."""
    b = np.asarray(best_epoch, dtype=np.float64)
    e = np.asarray(epoch_bound, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        late = (b >= (1.0 - LATE_FRACTION) * e).astype(np.float64)
    return np.where(np.isfinite(b) & np.isfinite(e) & (e > 0), late, np.nan)


def convergence(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (system, condition, model): n_params, lr, late_best_share, undertrained."""
    groups = ["system", "condition", "model"]
    cols = [*groups, "n_params", "lr", "late_best_share", "undertrained"]
    if not set(RUN_COLUMNS) <= set(frame.columns):
        return pd.DataFrame(columns=cols)
    f = frame.assign(late=late_best(frame["best_epoch"], frame["epoch_bound"]))
    rows = []
    for keys, grp in f.groupby(groups, sort=True):
        late = grp["late"].to_numpy(float)
        share = float(np.nanmean(late)) if np.isfinite(late).any() else np.nan
        lrs = sorted({float(x) for x in grp["lr"] if np.isfinite(x)})
        rows.append({
            **dict(zip(groups, keys, strict=True)),
            "n_params": float(grp["n_params"].max()),
            "lr": lrs[0] if len(lrs) == 1 else np.nan,
            "late_best_share": share,
            "undertrained": bool(np.isfinite(share) and share > UNDERTRAINED_SHARE),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def metrics_frame(
    records: Iterable[tuple[Mapping[str, object], Mapping[str, float | None]]],
    runs: Iterable[Mapping[str, object]] | None = None,
):
    """DataFrame with KEY_COLUMNS then every metric (None in a metrics file becomes NaN); with
    ``runs`` (each run's run.json, in the order of ``records``) also RUN_COLUMNS."""
    rows = []
    run_list = None if runs is None else list(runs)
    for i, (keys, metrics) in enumerate(records):
        missing = [k for k in KEY_COLUMNS if k not in keys]
        if missing:
            raise KeyError(f"run keys lack {missing}: {dict(keys)}")
        row = {k: keys[k] for k in KEY_COLUMNS}
        for name in METRIC_NAMES:
            value = metrics.get(name)
            row[name] = np.nan if value is None else float(value)
        if run_list is not None:
            info = run_list[i]
            trained = not info.get("baseline", False)
            for name in RUN_COLUMNS:
                value = info.get(name)
                if name in ("best_epoch", "epoch_bound", "lr") and not trained:
                    value = None  # nothing trained: no convergence, no lr
                row[name] = np.nan if value is None else float(value)
        rows.append(row)
    extra = list(RUN_COLUMNS) if run_list is not None else []
    if run_list is not None and len(run_list) != len(rows):
        raise ValueError(f"{len(rows)} metrics records but {len(run_list)} run records")
    frame = pd.DataFrame(rows, columns=[*KEY_COLUMNS, *METRIC_NAMES, *extra])
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
        raise ValueError(
            f"reference model '{reference}' has no runs; models: {sorted(set(frame['model']))}"
        )
    geo = []
    for keys, grp in frame.groupby(groups, sort=True):
        for metric in metrics:
            if metric in LOG_METRICS:
                geo.append(
                    {
                        **dict(zip(groups, keys, strict=True)),
                        "metric": metric,
                        **summarise_log(grp[metric].to_numpy(float)),
                    }
                )
    if geo:
        summary = summary.merge(pd.DataFrame(geo), on=[*groups, "metric"], how="left")
    logged = frame.copy()
    for metric in metrics:
        if metric in LOG_METRICS:
            x = logged[metric].to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                logged[metric] = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    tested = [m for m in metrics if m not in NOT_TESTED]
    # the families: the learned models only (the references stay outside every test); a run
    # whose reference is itself a reference model (the original code's oracle) keeps it
    learned = logged[~logged["model"].isin(REFERENCE_MODELS - {reference})]
    tests = compare_with_reference(
        learned, reference=reference, metrics=tested, group_cols=("system", "condition"),
        alpha=alpha,
    ).drop(columns=["reference", "n"])  # fmt: skip
    tests["scale"] = np.where(tests["metric"].isin(LOG_METRICS), "log", "linear")
    # mean_diff is reference minus model (of logs for errors): ratio = model / reference
    tests["ratio"] = np.where(tests["scale"] == "log", np.exp(-tests["mean_diff"]), np.nan)
    out = summary.merge(tests, on=[*groups, "metric"], how="left")
    out["significant"] = out["significant"].fillna(False).astype(bool)
    out["note"] = out["note"].fillna("")
    out.insert(3, "reference", reference)
    out["is_reference_model"] = out["model"].isin(REFERENCE_MODELS)
    conv = convergence(frame)
    if not conv.empty:
        out = out.merge(conv, on=groups, how="left")
        out["undertrained"] = out["undertrained"].fillna(False).astype(bool)
    return out.sort_values([*groups, "metric"], kind="stable").reset_index(drop=True)


TUNING_COLUMNS = (
    "system",
    "condition",
    "model",
    "grid",
    "chosen_lr",
    "extended",
    "at_edge",
    "scores",
    "tuning_seeds",
)


def tuning_frame(records: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """One row per tuned cell from its tuning.json (empty, with the columns, without tuning):
    the grid run (values joined by ';'), the choice, extensions, whether it sits at an edge,
    each lr's validation score and the tuning seeds."""
    rows = []
    for r in records:
        rows.append({
            "system": r["system"], "condition": r["condition"], "model": r["model"],
            "grid": ";".join(f"{float(x):g}" for x in r["grid"]),
            "chosen_lr": float(r["chosen_lr"]), "extended": int(r["extended"]),
            "at_edge": bool(r["at_edge"]),
            "scores": ";".join(f"{k}:{float(v):.6g}" for k, v in dict(r["scores"]).items()),
            "tuning_seeds": ";".join(str(int(x)) for x in r.get("tuning_seeds", [])),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(TUNING_COLUMNS))
    return frame.sort_values(["system", "condition", "model"], kind="stable").reset_index(drop=True)
