"""Score a sequence model on an irregular-sampling dataset: interpolation, extrapolation, rollouts.

The dataset dict holds the keys written by the FitzHugh-Nagumo data stage (see
``otgap.data.fhn``): ``test_t``, ``test_y``, ``test_obs``, ``test_target``, ``n_context``,
``rollout_t``, ``rollout_y``, ``rollout_context``, ``attractor_std``, ``lyapunov_time``.

- Interpolation: errors at the held-out ``test_target`` points inside the context window (never
  at observed points, which would flatter every model).
- Extrapolation: errors over the forecast horizon, columns ``n_context`` onwards.
- Rollouts: the first ``rollout_context`` points of each long trajectory are given, the rest is
  predicted; errors, phase-space divergence, valid prediction time and the error growth curve
  are computed over the predicted part. Where the dataset has a reference orbit
  (``attractor_orbit``, ``attractor_period``), also the metrics of ``otgap.metrics.orbit``:
  symmetric orbit distance over the second half of the predicted part (after the approach to the
  attractor), relative period error from the upward crossings of v after the first reference
  period of the predicted part (at least two crossings, else NaN: no oscillation), time in the
  band around the attractor (in periods), and ``rmse_saturation`` (the RMSE two phase-decorrelated trajectories reach: a rollout RMSE near it
  says only that the phase was lost). ``max_abs_rollout`` is the largest |y_hat| of the rollouts.
- Where the dataset has ``rollout_unseen_*`` (the original fixed 0.45-jitter grid), the rollout
  RMSE, orbit distance and period error on it are reported with the suffix ``_unseen``.
- Floors (``*_floor``, ``otgap.metrics.a1.FLOOR_OF``): the orbit distance and period error of the
  TRUE rollouts on the same windows, so every attractor metric can be read beside its floor.
- On a chaotic system (finite Lyapunov time) the period errors and their floors are NaN
  (``otgap.metrics.a1.NOT_ON_CHAOTIC``): an aperiodic orbit has no period, and the truth alone
  scores as much as the models' spread.

Every model is called with ``forecast_from`` at the start of the horizon / predicted part, so the
forecast region is predicted in the project's one rollout protocol (see
``otgap.models.sequence``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from otgap.metrics.a1 import NOT_ON_CHAOTIC
from otgap.metrics.chaos import (
    VPT_THRESHOLD,
    error_growth,
    phase_space_divergence,
    valid_prediction_time,
)
from otgap.metrics.errors import masked_mae, masked_rmse, normalised_error, per_sequence_rmse
from otgap.metrics.orbit import orbit_distance, saturation_rmse, time_in_band, upward_crossings

REQUIRED_KEYS = (
    "test_t",
    "test_y",
    "test_obs",
    "test_target",
    "n_context",
    "rollout_t",
    "rollout_y",
    "rollout_context",
    "attractor_std",
    "lyapunov_time",
)

METRIC_NAMES = (
    "rmse_interp",
    "mae",
    "rmse_extrap",
    "mae_extrap",
    "rmse_rollout",
    "mae_rollout",
    "phase_divergence",
    "vpt",
    "orbit_distance",
    "period_error",
    "time_in_band",
    "rmse_saturation",
    "max_abs_rollout",
    "rmse_rollout_unseen",
    "orbit_distance_unseen",
    "period_error_unseen",
    # floors: the true rollouts' own score on the same windows (otgap.metrics.a1.FLOOR_OF)
    "orbit_distance_floor",
    "period_error_floor",
    "orbit_distance_unseen_floor",
    "period_error_unseen_floor",
)

ORBIT_BAND = 0.3  # scaled distance from the attractor that counts as having left it


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    t: np.ndarray,
    y: np.ndarray,
    obs: np.ndarray,
    batch_size: int = 512,
    forecast_from: int | None = None,
) -> np.ndarray:
    """Run ``model`` in eval mode over minibatches and return float64 predictions (N, T, D)."""
    was_training = model.training
    model.eval()
    try:
        out = []
        for s in range(0, len(t), batch_size):
            sl = slice(s, s + batch_size)
            y_hat = model(
                torch.as_tensor(t[sl]),
                torch.as_tensor(y[sl]),
                torch.as_tensor(obs[sl]),
                forecast_from=forecast_from,
            )
            out.append(y_hat.double().cpu().numpy())
        return np.concatenate(out, axis=0)
    finally:
        model.train(was_training)


def evaluate_forecaster(
    model: torch.nn.Module,
    data: dict[str, np.ndarray],
    *,
    vpt_threshold: float = VPT_THRESHOLD,
    batch_size: int = 512,
    keep_rollouts: int = 2,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Return (scalar metrics, curves) for ``model`` on ``data``.

    ``curves`` holds arrays for figures: ``error_growth_mean``/``_std`` over rollout trajectories,
    ``rollout_time`` (time since the forecast start, from the first trajectory),
    ``rollout_pred`` (predictions of the first ``keep_rollouts`` trajectories, for time-series
    and phase-portrait panels), per-sequence test RMSEs, per-trajectory VPTs.
    """
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise KeyError(f"dataset lacks the key(s) {missing}; it has {sorted(data)}")
    n_context = int(data["n_context"])
    scale = np.asarray(data["attractor_std"], dtype=np.float64)
    lyap_time = float(data["lyapunov_time"])

    # Interpolation and extrapolation on the test split.
    t, y, obs = data["test_t"], data["test_y"], np.asarray(data["test_obs"], bool)
    target = np.asarray(data["test_target"], bool)
    if np.any(obs & target):
        raise ValueError("test_obs and test_target overlap: held-out targets must be unobserved")
    y_hat = predict(model, t, y, obs, batch_size, forecast_from=n_context)
    horizon = np.zeros_like(obs)
    horizon[:, n_context:] = True

    # Rollouts from a short given buffer.
    rt, ry = data["rollout_t"], data["rollout_y"]
    rc = int(data["rollout_context"])
    if not 1 <= rc < rt.shape[1]:
        raise ValueError(f"rollout_context={rc} must be in [1, {rt.shape[1]})")
    r_obs = np.zeros(rt.shape, dtype=bool)
    r_obs[:, :rc] = True
    r_hat = predict(model, rt, ry, r_obs, batch_size, forecast_from=rc)
    pred_part, true_part = r_hat[:, rc:], ry[:, rc:]
    err = normalised_error(pred_part, true_part, scale)
    vpt = valid_prediction_time(rt[:, rc:], rt[:, rc - 1], err, lyap_time, vpt_threshold)
    growth_mean, growth_std = error_growth(err)

    metrics = {
        "rmse_interp": masked_rmse(y_hat, y, target),
        "mae": masked_mae(y_hat, y, target),
        "rmse_extrap": masked_rmse(y_hat, y, horizon),
        "mae_extrap": masked_mae(y_hat, y, horizon),
        "rmse_rollout": masked_rmse(pred_part, true_part),
        "mae_rollout": masked_mae(pred_part, true_part),
        "phase_divergence": phase_space_divergence(pred_part, true_part, scale),
        "vpt": float(np.mean(vpt)) if math.isfinite(lyap_time) else float("nan"),
        "max_abs_rollout": float(np.max(np.abs(pred_part))),
        "rmse_saturation": saturation_rmse(scale),
    }
    nan = float("nan")
    orbit_per_traj = period_per_traj = band_per_traj = np.full(len(rt), nan)
    if "attractor_orbit" in data:
        orbit = np.asarray(data["attractor_orbit"], dtype=np.float64)
        ref_period = float(data["attractor_period"])
        level = float(orbit[:, 0].mean())
        hyst = 0.25 * float(orbit[:, 0].std())
        half = pred_part.shape[1] // 2
        orbit_per_traj = orbit_distance(pred_part[:, half:], orbit, scale)
        period_per_traj = period_error(rt[:, rc:], pred_part, level, hyst, ref_period)
        band_per_traj = time_in_band(
            rt[:, rc:], pred_part, true_part, orbit, scale, ORBIT_BAND, ref_period
        )
        metrics["orbit_distance"] = _nanmean(orbit_per_traj)
        metrics["period_error"] = _nanmean(period_per_traj)
        metrics["time_in_band"] = _nanmean(band_per_traj)
        metrics["orbit_distance_floor"] = _nanmean(
            orbit_distance(true_part[:, half:], orbit, scale)
        )
        metrics["period_error_floor"] = _nanmean(
            period_error(rt[:, rc:], true_part, level, hyst, ref_period)
        )
        if "rollout_unseen_t" in data:
            ut, uy = data["rollout_unseen_t"], data["rollout_unseen_y"]
            u_obs = np.zeros(ut.shape, dtype=bool)
            u_obs[:, :rc] = True
            u_hat = predict(model, ut, uy, u_obs, batch_size, forecast_from=rc)[:, rc:]
            metrics["rmse_rollout_unseen"] = masked_rmse(u_hat, uy[:, rc:])
            metrics["orbit_distance_unseen"] = _nanmean(
                orbit_distance(u_hat[:, half:], orbit, scale)
            )
            metrics["period_error_unseen"] = _nanmean(
                period_error(ut[:, rc:], u_hat, level, hyst, ref_period)
            )
            u_true = uy[:, rc:]
            metrics["orbit_distance_unseen_floor"] = _nanmean(
                orbit_distance(u_true[:, half:], orbit, scale)
            )
            metrics["period_error_unseen_floor"] = _nanmean(
                period_error(ut[:, rc:], u_true, level, hyst, ref_period)
            )
    if math.isfinite(lyap_time):  # chaotic: no period to time (NOT_ON_CHAOTIC)
        for name in NOT_ON_CHAOTIC:
            metrics[name] = nan
        period_per_traj = np.full(len(rt), nan)
    for name in METRIC_NAMES:
        metrics.setdefault(name, nan)
    curves = {
        "error_growth_mean": growth_mean,
        "error_growth_std": growth_std,
        # error curves are averaged index by index over trajectories whose jittered times drift
        # apart, so their time axis is the mean elapsed time at each index
        "rollout_time": (rt[:, rc:] - rt[:, rc - 1 : rc]).mean(axis=0),
        "rollout_pred": r_hat[:keep_rollouts],
        "rmse_interp_per_sequence": per_sequence_rmse(y_hat, y, target),
        "rmse_extrap_per_sequence": per_sequence_rmse(y_hat, y, horizon),
        "rmse_rollout_per_trajectory": per_sequence_rmse(pred_part, true_part),
        "vpt_per_trajectory": vpt,
        "orbit_distance_per_trajectory": orbit_per_traj,
        "period_error_per_trajectory": period_per_traj,
        "time_in_band_per_trajectory": band_per_traj,
    }
    return metrics, curves


def period_error(
    t: np.ndarray, y: np.ndarray, level: float, hyst: float, ref_period: float
) -> np.ndarray:
    """|T - T_ref| / T_ref per rollout, T the mean interval between the upward crossings of v
    after the first ``ref_period`` of the rollout (a transient); NaN with fewer than two."""
    out = np.full(len(t), np.nan)
    for n, (tt, yy) in enumerate(zip(t, y, strict=True)):
        if not np.all(np.isfinite(yy)):
            continue
        c = upward_crossings(tt, yy[:, 0], level, hyst)
        c = c[c > tt[0] + ref_period]
        if c.size >= 2:
            out[n] = abs(float(np.mean(np.diff(c))) - ref_period) / ref_period
    return out


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")


def as_numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """Plain floats (NaN kept) for a metrics file."""
    return {k: float(v) for k, v in metrics.items()}
