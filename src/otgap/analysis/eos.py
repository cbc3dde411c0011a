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
# Fraction of the steps, counted from the end, that "late training" means in summaries.
LATE_FRACTION = 0.25
# Share of the sharpness measurements, counted from the last, over which the "at the edge" ratio
# is a median (Cohen et al.'s hovering: sharpness/threshold stays near 1 once reached).
EDGE_FRACTION = 1 / 3


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
    for vec in vectors:
        set_flat_parameters(model, vec)
        try:
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
    """One run's history with its identifying columns first and ``ratio`` = sharpness/threshold."""
    frame = history.copy()
    if "threshold" not in frame or frame["threshold"].isna().all():
        frame["threshold"] = threshold
    frame["diverged"] = frame["diverged"].fillna(False).astype(bool)
    frame["ratio"] = frame["sharpness"] / frame["threshold"]
    for i, key in enumerate(RUN_KEYS):
        frame.insert(i, key, keys[key])
    frame["lr"] = frame["lr"].astype(float)
    frame["seed"] = frame["seed"].astype(np.int64)
    return frame


def _last_finite(series: pd.Series) -> float:
    s = series.dropna()
    s = s[np.isfinite(s)]
    return float(s.iloc[-1]) if len(s) else math.nan


def run_summary(trajectory: pd.DataFrame, info: Mapping[str, Any]) -> dict[str, Any]:
    """Per-run summary: final accuracy, max/final sharpness and ratio, time above threshold, ..."""
    t = trajectory
    keys = {k: t[k].iloc[0] for k in RUN_KEYS}
    measured = t.dropna(subset=["sharpness"])
    ratio = measured["ratio"]
    total = int(info.get("steps", t["step"].max()))
    late = measured[measured["step"] >= (1 - LATE_FRACTION) * total]
    edge = ratio.iloc[len(ratio) - max(math.ceil(EDGE_FRACTION * len(ratio)), 1) :]
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
        "max_ratio": float(ratio.max()) if len(ratio) else math.nan,
        "final_ratio": _last_finite(ratio),
        "late_ratio_median": float(late["ratio"].median()) if len(late) else math.nan,
        "edge_ratio_median": float(edge.median()) if len(ratio) else math.nan,
        "loss_ratio": _last_finite(losses) / float(losses.iloc[0])
        if len(losses) and float(losses.iloc[0]) != 0
        else math.nan,
        "frac_above": float((ratio > 1).mean()) if len(ratio) else math.nan,
        "first_step_above": int(measured.loc[ratio > 1, "step"].iloc[0])
        if bool((ratio > 1).any())
        else -1,
        "n_measurements": len(measured),
        "steps": total,
        "steps_done": int(info.get("steps_done", t["step"].max())),
        "diverged": bool(info.get("diverged", t["diverged"].any())),
        "diverged_step": int(diverged_step) if diverged_step is not None else -1,
        "preconditioned": bool(info.get("preconditioned", False)),
        "full_batch": bool(info.get("full_batch", False)),
        "n_params": int(info.get("n_params", -1)),
    }


def config_statistics(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per configuration, and the number diverged."""
    metrics = ["final_test_acc", "max_ratio", "final_ratio", "frac_above"]
    metrics += [m for m in ("edge_ratio_median", "loss_ratio") if m in summary]
    grouped = summary.groupby(list(CONFIG_KEYS), sort=True)
    mean = grouped[metrics].mean().add_suffix("_mean")
    std = grouped[metrics].std(ddof=1).add_suffix("_std")
    counts = grouped.agg(
        threshold=("threshold", "first"), n_seeds=("seed", "size"), n_diverged=("diverged", "sum")
    )
    out = pd.concat([mean, std, counts], axis=1).reset_index()
    out["n_diverged"] = out["n_diverged"].astype(int)
    return out
