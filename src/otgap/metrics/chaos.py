"""Rollout diagnostics: phase-space divergence, valid prediction time, error growth.

Inputs are rollouts scored from the first predicted point on: ``t`` (N, L) times of the predicted
points, ``t0`` (N,) the time of the last given point (where the forecast starts), ``err`` (N, L) a
normalised error per point (``otgap.metrics.errors.normalised_error``).
"""

from __future__ import annotations

import math

import numpy as np

from otgap.metrics.errors import phase_space_distance

VPT_THRESHOLD = 0.4


def phase_space_divergence(pred: np.ndarray, true: np.ndarray, scale: np.ndarray) -> float:
    """Mean over trajectories and time of the scaled distance between prediction and truth."""
    return float(np.mean(phase_space_distance(pred, true, scale)))


def valid_prediction_time(
    t: np.ndarray,
    t0: np.ndarray,
    err: np.ndarray,
    lyapunov_time: float,
    threshold: float = VPT_THRESHOLD,
) -> np.ndarray:
    """Valid prediction time of each trajectory, in Lyapunov times (N,).

    The time from ``t0`` to the last prediction before the normalised error first exceeds
    ``threshold`` (Vlachas et al. 2020: the longest horizon over which every error stays below the
    threshold); 0 if the first prediction already exceeds it, the whole rollout if none does
    (a censored value). NaN for every trajectory when ``lyapunov_time`` is NaN (no chaos, so no
    Lyapunov time to measure in).
    """
    t = np.asarray(t, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    t0 = np.broadcast_to(np.asarray(t0, dtype=np.float64), t.shape[:1])
    if t.shape != err.shape or t.ndim != 2:
        raise ValueError(f"t and err must both have shape (N, L); got {t.shape} and {err.shape}")
    if lyapunov_time is None or not math.isfinite(lyapunov_time):
        return np.full(t.shape[0], np.nan)
    if lyapunov_time <= 0:
        raise ValueError(f"lyapunov_time must be positive, got {lyapunov_time}")
    exceeded = ~(err <= threshold)  # a NaN error (a blown-up rollout) counts as exceeded
    first = np.where(exceeded.any(axis=1), exceeded.argmax(axis=1), t.shape[1])
    last_valid = np.where(first > 0, t[np.arange(t.shape[0]), np.maximum(first - 1, 0)], t0)
    return (last_valid - t0) / lyapunov_time


def error_growth(err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation across trajectories of the error at each step, (L,) each."""
    err = np.asarray(err, dtype=np.float64)
    if err.ndim != 2:
        raise ValueError(f"err must have shape (N, L), got {err.shape}")
    std = err.std(axis=0, ddof=1) if err.shape[0] > 1 else np.zeros(err.shape[1])
    return err.mean(axis=0), std


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with a shrinking window at the ends (same length as ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x.copy()
    kernel = np.ones(window)
    num = np.convolve(x, kernel, mode="same")
    den = np.convolve(np.ones_like(x), kernel, mode="same")
    return num / den
