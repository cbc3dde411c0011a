"""Analysis of Edge-of-Stability training runs (Appendix A.2): rebuild, spectra, tidy tables.

A training run (``otgap.train.eos``) leaves ``history.csv``, ``snapshots.npz``, ``model.pt`` and a
``run.json`` sidecar whose ``settings`` name the model, its hyperparameters and the loss. This
module rebuilds the model at any snapshot from those, computes Hessian spectra at chosen
snapshots, and turns many runs' histories into one tidy table, one summary row per run and
per-configuration statistics over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from otgap.io import read_json, read_npz
from otgap.landscape.grid import trainable_parameters
from otgap.landscape.trajectory import finite_rows

# Columns that identify a run, in the order they lead every table.
RUN_KEYS = ("dataset", "model", "optimizer", "lr", "loss", "seed")
CONFIG_KEYS = ("dataset", "model", "optimizer", "lr", "loss")
# The late phase, one definition for every table, figure and the paper: the last third of a run's
# usable sharpness measurements (Cohen et al.'s hovering: sharpness/threshold stays near 1 once
# reached). "Usable" drops step 0 of preconditioned runs, where Adam's preconditioner is still
# (1 - beta1)|g| and the ratio is meaningless; that value is reported on its own (step0_ratio).
LATE_FRACTION = 1 / 3
# Fraction of the threshold that counts as "reached the edge" (steps_to_edge).
EDGE_REACHED = 0.9
# Confidence level of the share-above interval (Wilson) and of intervals over seeds.
INTERVAL_LEVEL = 0.95


@dataclass
class EosRun:
    """One finished training run as read from its directory."""

    info: dict[str, Any]
    history: pd.DataFrame
    snapshot_steps: np.ndarray
    snapshots: np.ndarray

    @property
    def settings(self) -> dict[str, Any]:
        return self.info["settings"]


def read_run(history: str | Path, snapshots: str | Path | None, run_json: str | Path) -> EosRun:
    """Read a run's history, snapshots (optional) and sidecar, with clear errors."""
    info = read_json(run_json)
    if "settings" not in info:
        raise KeyError(f"'{run_json}' has no 'settings'; was it written by the eos_train rule?")
    hist = pd.read_csv(history)
    # solver diagnostics (absent from older runs): nullable dtypes, empty where not measured
    if "eig_matvec" in hist:
        hist["eig_matvec"] = hist["eig_matvec"].astype("Int64")
    if "eig_converged" in hist:
        hist["eig_converged"] = hist["eig_converged"].astype("boolean")
    if snapshots is None:
        return EosRun(info, hist, np.zeros(0, dtype=np.int64), np.zeros((0, 0), np.float32))
    snap = read_npz(snapshots, required=("steps", "params"))
    return EosRun(info, hist, snap["steps"], snap["params"])


def load_run_data(info: Mapping[str, Any]):
    """The run's data set, loaded with the same arguments its training job used (``run.json``)."""
    from otgap.data.classification import load_dataset

    prov = info.get("provenance") or {}
    data_params = (prov.get("params") or {}).get("data")
    if not isinstance(data_params, Mapping) or "name" not in data_params:
        raise KeyError(
            "run.json lacks provenance.params.data (the loader arguments of the training job); "
            "rerun the eos_train rule"
        )
    data_params = dict(data_params)
    return load_dataset(data_params.pop("name"), **data_params)


def build_model(settings: Mapping[str, Any], input_shape: Sequence[int], n_classes: int):
    """The run's classifier (untrained) from its settings, via the classifier registry."""
    from otgap.models.classifiers import CLASSIFIERS

    return CLASSIFIERS[settings["model"]](
        tuple(input_shape), n_classes, **dict(settings.get("model_hyper") or {})
    )


def rebuild_run(history: str | Path, snapshots: str | Path, run_json: str | Path):
    """A finished run with its data and an (untrained) model of its architecture, for analysis."""
    run = read_run(history, snapshots, run_json)
    data = load_run_data(run.info)
    return run, data, build_model(run.settings, data.input_shape, data.n_classes)


def _run_subsets(run: EosRun, data):
    from otgap.train.eos import EosSettings, run_subsets

    settings = EosSettings.from_params(run.settings)
    return run_subsets(data.y_train, data.n_classes, settings, bool(run.info.get("full_batch")))


def landscape_samples(run: EosRun, data, n_samples: int) -> torch.Tensor:
    """Training-part indices a run's landscape is computed on: a full-batch run's training
    subset (the loss it descended), else ``n_samples`` chosen as the run chose its subsets."""
    from otgap.train.subsets import subset_indices

    if run.info.get("full_batch"):
        return _run_subsets(run, data)[0]
    s = run.settings
    n = min(int(n_samples), len(data.y_train))
    return subset_indices(
        data.y_train,
        n,
        mode=s.get("subset", "first"),
        seed=int(s.get("subset_seed", 0)),
        n_classes=data.n_classes,
        what="landscape.n_samples",
    )


def sharpness_samples(run: EosRun, data) -> torch.Tensor:
    """Training-part indices the run measured its sharpness on (its eig subset)."""
    return _run_subsets(run, data)[1]


def run_loss(settings: Mapping[str, Any]):
    from otgap.train.eos import loss_function

    return loss_function(settings["loss"])


def set_flat_parameters(model: nn.Module, vector: np.ndarray | torch.Tensor) -> None:
    """Copy a flat vector (``model.parameters()`` order, trainable only) into the model."""
    params = [p for _, p in trainable_parameters(model)]
    v = torch.as_tensor(np.asarray(vector))
    n = sum(p.numel() for p in params)
    if v.numel() != n:
        raise ValueError(f"snapshot has {v.numel()} entries but the model has {n} parameters")
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(v.to(params[0].device, params[0].dtype), params)


def batchnorm_at_last_snapshot(
    model: nn.Module, snapshots: np.ndarray, inputs: torch.Tensor
) -> str:
    """Give a BatchNorm model the running statistics of ``inputs`` at its last finite snapshot.

    The landscape evaluates every grid point in eval mode with one set of BatchNorm statistics;
    these are the ones of the trajectory's end point on the landscape's own samples. Returns a
    note for the job's sidecar ("" for a model without BatchNorm).
    """
    from otgap.landscape.grid import has_batchnorm, recalibrate_batchnorm

    if not has_batchnorm(model):
        return ""
    finite = np.flatnonzero(finite_rows(snapshots))
    if len(finite) == 0:
        raise ValueError("no finite snapshot to take BatchNorm statistics at")
    set_flat_parameters(model, snapshots[int(finite[-1])])
    recalibrate_batchnorm(model, inputs)
    return (
        f"eval-mode BatchNorm: running statistics of the {len(inputs)} samples at snapshot "
        f"{int(finite[-1])} (the last finite one), shared by every grid point"
    )


def spectrum_snapshot_indices(steps: np.ndarray, snapshots: np.ndarray) -> list[int]:
    """Rows of the start, middle and end snapshots among the finite ones (fewer if fewer exist)."""
    finite = np.flatnonzero(finite_rows(snapshots))
    if len(finite) == 0:
        return []
    first, last = int(finite[0]), int(finite[-1])
    mid_step = 0.5 * (steps[first] + steps[last])
    middle = int(finite[np.argmin(np.abs(steps[finite] - mid_step))])
    return sorted({first, middle, last})


def hessian_spectra(
    model: nn.Module,
    loss_fn,
    vectors: np.ndarray,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    n_vectors: int,
    n_iter: int,
    trace_matvecs: int,
    points: int,
    sigma: float,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """SLQ density, Hutch++ trace and top eigenvalue of the Hessian at each row of ``vectors``.

    The smoothed densities share one grid spanning all nodes (padded by 5% of the range), with a
    Gaussian kernel of width ``sigma`` times that range, so they can be drawn on one axis. Nodes
    and weights are padded with NaN/0 to a common length (Lanczos may stop early). A snapshot
    whose loss or curvature is not finite (a diverging run) gets NaN values instead of an error.
    """
    from otgap.curvature import hessian_trace, sharpness, spectral_density

    nodes, weights, trace, trace_err, top = [], [], [], [], []
    from otgap.landscape.grid import recalibrate_batchnorm

    for vec in vectors:
        set_flat_parameters(model, vec)
        try:
            # eval-mode BatchNorm (the curvature products' mode) with statistics of these inputs
            # at this snapshot; a no-op without BatchNorm
            recalibrate_batchnorm(model, inputs)
            dens = spectral_density(
                model, loss_fn, inputs, targets, num_probes=n_vectors, num_steps=n_iter, seed=seed
            )
            tr = hessian_trace(
                model, loss_fn, inputs, targets, num_matvecs=trace_matvecs, seed=seed
            )
            lam = float(sharpness(model, loss_fn, inputs, targets, k=1)[0])
        except ValueError as exc:  # non-finite loss or curvature: a diverging run's weights
            if "finite" not in str(exc):
                raise
            nodes.append(np.full(1, np.nan))
            weights.append(np.zeros(1))
            trace.append(math.nan)
            trace_err.append(math.nan)
            top.append(math.nan)
            continue
        nodes.append(dens.nodes.numpy())
        weights.append(dens.weights.numpy())
        trace.append(tr.mean)
        trace_err.append(tr.stderr)
        top.append(lam)
    q = max(len(n) for n in nodes)
    node_arr = np.full((len(nodes), q), np.nan)
    weight_arr = np.zeros((len(nodes), q))
    for i, (n, w) in enumerate(zip(nodes, weights, strict=True)):
        node_arr[i, : len(n)] = n
        weight_arr[i, : len(w)] = w
    finite = node_arr[np.isfinite(node_arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    span = max(hi - lo, 1e-12 * max(abs(lo), abs(hi), 1.0))
    grid = np.linspace(lo - 0.05 * span, hi + 0.05 * span, points)
    width = sigma * span
    z = (grid[None, :, None] - node_arr[:, None, :]) / width
    kernel = np.exp(-0.5 * np.nan_to_num(z, nan=np.inf) ** 2) / (width * math.sqrt(2 * math.pi))
    density = np.einsum("spq,sq->sp", kernel, weight_arr)
    density[~np.isfinite(node_arr).any(axis=1)] = np.nan
    return {
        "nodes": node_arr,
        "weights": weight_arr,
        "grid": grid,
        "density": density,
        "sigma": np.asarray(width),
        "trace": np.asarray(trace),
        "trace_stderr": np.asarray(trace_err),
        "top_eigenvalue": np.asarray(top),
    }


# ---------------------------------------------------------------------------------------------
# Tidy tables
# ---------------------------------------------------------------------------------------------


def run_trajectory(
    keys: Mapping[str, Any], history: pd.DataFrame, threshold: float
) -> pd.DataFrame:
    """One run's history with its identifying columns first, ``ratio`` = sharpness/threshold and,
    where the run measured it, ``bs_ratio`` = batch sharpness/threshold."""
    frame = history.copy()
    if "threshold" not in frame or frame["threshold"].isna().all():
        frame["threshold"] = threshold
    frame["diverged"] = frame["diverged"].fillna(False).astype(bool)
    frame["ratio"] = frame["sharpness"] / frame["threshold"]
    if "batch_sharpness" not in frame:
        frame["batch_sharpness"] = math.nan
    frame["bs_ratio"] = frame["batch_sharpness"] / frame["threshold"]
    for i, key in enumerate(RUN_KEYS):
        frame.insert(i, key, keys[key])
    frame["lr"] = frame["lr"].astype(float)
    frame["seed"] = frame["seed"].astype(np.int64)
    return frame


def _last_finite(series: pd.Series) -> float:
    s = series.dropna()
    s = s[np.isfinite(s)]
    return float(s.iloc[-1]) if len(s) else math.nan


# ---------------------------------------------------------------------------------------------
# The late phase and the share above threshold (one definition, used by every consumer)
# ---------------------------------------------------------------------------------------------


def usable_measurements(
    frame: pd.DataFrame, column: str = "ratio", *, preconditioned: bool = False
) -> pd.DataFrame:
    """Rows with a finite ``column``, in step order; step 0 dropped for preconditioned runs
    (the preconditioner of the first update is (1 - beta1)|g|, so that ratio says nothing about
    where training settles)."""
    values = pd.to_numeric(frame[column], errors="coerce") if column in frame else None
    if values is None:
        return frame.iloc[0:0]
    out = frame[np.isfinite(values.to_numpy(float))]
    if preconditioned:
        out = out[out["step"] != 0]
    return out.sort_values("step", kind="stable")


def late_phase(frame: pd.DataFrame, column: str = "ratio", *, preconditioned: bool = False):
    """The late phase of one run: the last third (at least one) of its usable measurements."""
    d = usable_measurements(frame, column, preconditioned=preconditioned)
    return d.iloc[len(d) - max(math.ceil(LATE_FRACTION * len(d)), 1) :] if len(d) else d


def late_median(frame: pd.DataFrame, column: str = "ratio", *, preconditioned: bool = False):
    """Median of ``column`` over the late phase (NaN when nothing was measured)."""
    d = late_phase(frame, column, preconditioned=preconditioned)
    return float(d[column].median()) if len(d) else math.nan


def wilson_interval(k: int, n: int, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k/n`` ((nan, nan) for ``n = 0``)."""
    from scipy.stats import norm

    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k}, n={n}")
    z = float(norm.ppf(0.5 + level / 2))
    p, z2 = k / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def share_above(values: Sequence[float] | pd.Series, threshold: float = 1.0) -> dict[str, float]:
    """Share of finite ``values`` above ``threshold``: ``share``, ``k``, ``n`` and its Wilson
    interval ``lo``/``hi``. Callers pass usable measurements (see :func:`usable_measurements`)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n, k = int(v.size), int((v > threshold).sum())
    lo, hi = wilson_interval(k, n)
    return {"share": k / n if n else math.nan, "k": k, "n": n, "lo": lo, "hi": hi}


#: Fewest seeds a t-interval of a mean over seeds is computed from (fewer: per-seed values only).
MIN_SEEDS_FOR_INTERVAL = 3


def seed_interval(values: Sequence[float] | pd.Series, level: float = INTERVAL_LEVEL):
    """Mean over seeds and its t-interval ``(mean, lo, hi, n)``; lo/hi are NaN for fewer than
    :data:`MIN_SEEDS_FOR_INTERVAL` finite values (t with 1 degree of freedom is 12.7)."""
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    mean = float(v.mean()) if n else math.nan
    if n < MIN_SEEDS_FOR_INTERVAL:
        return mean, math.nan, math.nan, n
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def steps_to_edge(
    frame: pd.DataFrame,
    column: str = "ratio",
    *,
    fraction: float = EDGE_REACHED,
    preconditioned: bool = False,
) -> int:
    """First measured step at which ``column`` >= ``fraction`` (-1: never)."""
    d = usable_measurements(frame, column, preconditioned=preconditioned)
    hit = d.loc[d[column] >= fraction, "step"]
    return int(hit.iloc[0]) if len(hit) else -1


def _ratio_summary(measured: pd.DataFrame, column: str, preconditioned: bool) -> dict[str, Any]:
    d = usable_measurements(measured, column, preconditioned=preconditioned)
    share = share_above(d[column]) if len(d) else share_above([])
    above = d.loc[d[column] > 1, "step"]
    return {
        "max": float(d[column].max()) if len(d) else math.nan,
        "final": _last_finite(d[column]) if len(d) else math.nan,
        "late": late_median(measured, column, preconditioned=preconditioned),
        "frac_above": share["share"],
        "n_above": share["k"],
        "n": share["n"],
        "first_above": int(above.iloc[0]) if len(above) else -1,
        "to_edge": steps_to_edge(measured, column, preconditioned=preconditioned),
    }


def run_summary(trajectory: pd.DataFrame, info: Mapping[str, Any]) -> dict[str, Any]:
    """Per-run summary: final accuracy, sharpness/threshold (max, final, late-phase median, share
    above) without a preconditioned run's step 0 (``step0_ratio`` holds it), and the same for the
    batch sharpness (``bs_*``, NaN where not measured)."""
    t = trajectory.sort_values("step", kind="stable")
    keys = {k: t[k].iloc[0] for k in RUN_KEYS}
    preconditioned = bool(info.get("preconditioned", False))
    measured = t.dropna(subset=["sharpness"])
    lam = _ratio_summary(measured, "ratio", preconditioned)
    bs_col = "bs_ratio" if "bs_ratio" in t else "ratio"
    bs = _ratio_summary(t if bs_col == "bs_ratio" else t.iloc[0:0], bs_col, False)
    step0 = measured.loc[measured["step"] == 0, "ratio"]
    total = int(info.get("steps", t["step"].max()))
    losses = t["train_loss"].dropna()
    diverged_step = info.get("diverged_step")
    return {
        **keys,
        "threshold": float(t["threshold"].dropna().iloc[0])
        if t["threshold"].notna().any()
        else math.nan,
        "final_train_loss": _last_finite(t["train_loss"]),
        "final_train_acc": _last_finite(t["train_acc"]),
        "final_test_acc": _last_finite(t["test_acc"]),
        "max_sharpness": float(measured["sharpness"].max()) if len(measured) else math.nan,
        "final_sharpness": _last_finite(measured["sharpness"]),
        "max_ratio": lam["max"],
        "final_ratio": lam["final"],
        "step0_ratio": float(step0.iloc[0]) if len(step0) else math.nan,
        "late_ratio_median": lam["late"],
        "loss_ratio": _last_finite(losses) / float(losses.iloc[0])
        if len(losses) and float(losses.iloc[0]) != 0
        else math.nan,
        "frac_above": lam["frac_above"],
        "n_above": lam["n_above"],
        "first_step_above": lam["first_above"],
        "steps_to_edge": lam["to_edge"],
        "n_measurements": lam["n"],
        "bs_max_ratio": bs["max"],
        "bs_final_ratio": bs["final"],
        "bs_late_ratio_median": bs["late"],
        "bs_frac_above": bs["frac_above"],
        "bs_n_above": bs["n_above"],
        "bs_n_measurements": bs["n"],
        "bs_steps_to_edge": bs["to_edge"],
        "steps": total,
        "steps_done": int(info.get("steps_done", t["step"].max())),
        "diverged": bool(info.get("diverged", t["diverged"].any())),
        "diverged_step": int(diverged_step) if diverged_step is not None else -1,
        "preconditioned": preconditioned,
        "full_batch": bool(info.get("full_batch", False)),
        "n_params": int(info.get("n_params", -1)),
    }


def config_statistics(summary: pd.DataFrame) -> pd.DataFrame:
    """Per configuration over seeds: mean and standard deviation, the late-phase medians' mean
    with its t-interval (``*_lo``/``*_hi``, NaN for fewer than 3 seeds), the pooled share of
    measurements above threshold with its Wilson interval, and the number diverged."""
    metrics = ["final_test_acc", "max_ratio", "final_ratio", "frac_above", "late_ratio_median"]
    metrics += ["loss_ratio", "bs_late_ratio_median", "bs_frac_above"]
    metrics = [m for m in metrics if m in summary]
    rows = []
    for values, g in summary.groupby(list(CONFIG_KEYS), sort=True):
        row: dict[str, Any] = dict(zip(CONFIG_KEYS, values, strict=True))
        for m in metrics:
            v = pd.to_numeric(g[m], errors="coerce")
            row[f"{m}_mean"] = float(v.mean())
            row[f"{m}_std"] = float(v.std(ddof=1)) if v.notna().sum() > 1 else math.nan
        for prefix in ("", "bs_"):
            if f"{prefix}late_ratio_median" in g:
                _, lo, hi, n = seed_interval(g[f"{prefix}late_ratio_median"])
                row[f"{prefix}late_ratio_median_lo"], row[f"{prefix}late_ratio_median_hi"] = lo, hi
            k_col, n_col = f"{prefix}n_above", f"{prefix}n_measurements"
            if k_col in g and n_col in g:
                k = int(pd.to_numeric(g[k_col], errors="coerce").fillna(0).sum())
                n = int(pd.to_numeric(g[n_col], errors="coerce").fillna(0).sum())
                lo, hi = wilson_interval(k, n)
                row[f"{prefix}share_above"] = k / n if n else math.nan
                row[f"{prefix}share_above_lo"], row[f"{prefix}share_above_hi"] = lo, hi
                row[f"{prefix}share_above_n"] = n
        row["threshold"] = g["threshold"].iloc[0]
        row["n_seeds"] = len(g)
        row["n_diverged"] = int(g["diverged"].astype(bool).sum())
        rows.append(row)
    return pd.DataFrame(rows)
