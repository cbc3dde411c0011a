"""Pointwise forecast errors over masked sets of time points (numpy, float64).

Arrays: ``pred`` and ``true`` (N, T, D), ``mask`` (N, T) bool selecting the time points scored.
All D components of a selected point count, so RMSE is the root of the mean over points and
components. An empty mask gives NaN: "not applicable" rather than a fake zero.
"""

from __future__ import annotations

import numpy as np


def _check(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and true must both have shape (N, T, D); got {pred.shape} and {true.shape}"
        )
    if mask is None:
        return np.ones(pred.shape[:2], dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must have shape (N, T) = {pred.shape[:2]}, got {mask.shape}")
    return mask


def masked_rmse(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    mask = _check(pred, true, mask)
    if not mask.any():
        return float("nan")
    diff = np.asarray(pred, np.float64)[mask] - np.asarray(true, np.float64)[mask]
    return float(np.sqrt(np.mean(diff**2)))


def masked_mae(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    mask = _check(pred, true, mask)
    if not mask.any():
        return float("nan")
    diff = np.asarray(pred, np.float64)[mask] - np.asarray(true, np.float64)[mask]
    return float(np.mean(np.abs(diff)))


def per_sequence_rmse(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None):
    """RMSE of each sequence over its selected points, (N,); NaN for a sequence with none."""
    mask = _check(pred, true, mask)
    sq = np.mean((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) ** 2, axis=-1)
    count = mask.sum(axis=1)
    total = np.where(mask, sq, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.sqrt(total / np.maximum(count, 1)), np.nan)


def _scale(scale: np.ndarray, d: int) -> np.ndarray:
    scale = np.asarray(scale, dtype=np.float64)
    if scale.shape != (d,) or not np.all(scale > 0):
        raise ValueError(f"scale must be {d} positive numbers (one per component), got {scale}")
    return scale


def phase_space_distance(pred: np.ndarray, true: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Euclidean distance in the state plane with each component divided by ``scale``: (N, T)."""
    _check(pred, true, None)
    s = _scale(scale, np.shape(pred)[-1])
    z = (np.asarray(pred, np.float64) - np.asarray(true, np.float64)) / s
    return np.sqrt(np.sum(z**2, axis=-1))


def normalised_error(pred: np.ndarray, true: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Root-mean-square over components of the scaled error, (N, T) (Vlachas et al.'s NRMSE).

    Equal to ``phase_space_distance / sqrt(D)``; 1 means an error as large as the attractor's
    spread, which is the scale the valid-prediction-time threshold refers to.
    """
    d = np.shape(pred)[-1]
    return phase_space_distance(pred, true, scale) / np.sqrt(d)
