"""Rollout metrics that separate staying on the attractor from keeping its phase.

On a limit cycle two trajectories whose phases drift apart reach the RMSE of two independent
points of the cycle, about ``sqrt(var_v + var_w)`` (``saturation_rmse``), whatever else they do; the
metrics here answer the separate questions. All distances are in the scaled (v, w) plane: each
component divided by its standard deviation on the attractor. The reference orbit is a dense,
time-ordered sample of the attractor (one long trajectory after its transient).

- ``orbit_distance``: symmetric mean nearest-neighbour distance between the set of predicted points
  and the reference orbit: (mean over predictions of the distance to the orbit + mean over orbit
  points of the distance to the predictions) / 2. A prediction that sits still near the cycle has a
  small first term but a large second one, so it scores badly.
- ``period``: mean time between upward crossings of v through a level, with hysteresis (a
  crossing counts only after v has been below level - band since the last one); NaN with fewer than three
  crossings (no oscillation to time). ``relative period error`` = |T_pred - T_true| / T_true.
- ``time_in_band``: the time from when the TRUE trajectory first lies within ``band`` of the
  reference orbit until the prediction first lies further than ``band`` from it, in units of the
  reference period; censored at the end of the rollout.
"""

from __future__ import annotations

import numpy as np


def _scaled(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if x.shape[-1] != 2 or scale.shape != (2,) or not np.all(scale > 0):
        raise ValueError(f"need states (..., 2) and two positive scales; got {x.shape}, {scale}")
    return x / scale


def nearest_distance(points: np.ndarray, ref: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Distance from each of ``points`` (N, 2) to its nearest neighbour in ``ref`` (M, 2); (N,)."""
    points = np.asarray(points, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        raise ValueError("the reference set is empty")
    out = np.empty(points.shape[0])
    for s in range(0, points.shape[0], chunk):
        p = points[s : s + chunk]
        d2 = ((p[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
        out[s : s + chunk] = np.sqrt(d2.min(axis=1))
    return out


def orbit_distance(pred: np.ndarray, orbit: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Symmetric orbit distance of each rollout ``pred`` (N, L, 2) to ``orbit`` (M, 2); (N,).

    Non-finite predictions give NaN for that rollout.
    """
    pred = _scaled(pred, scale)
    ref = _scaled(orbit, scale)
    out = np.full(pred.shape[0], np.nan)
    for n, p in enumerate(pred):
        if not np.all(np.isfinite(p)):
            continue
        out[n] = 0.5 * (nearest_distance(p, ref).mean() + nearest_distance(ref, p).mean())
    return out


def upward_crossings(t: np.ndarray, v: np.ndarray, level: float, band: float) -> np.ndarray:
    """Times (linearly interpolated) where ``v`` rises through ``level``, with hysteresis."""
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    times = []
    armed = False
    for k in range(1, v.size):
        if v[k - 1] < level - band:
            armed = True
        if armed and v[k - 1] <= level < v[k]:
            frac = (level - v[k - 1]) / (v[k] - v[k - 1])
            times.append(t[k - 1] + frac * (t[k] - t[k - 1]))
            armed = False  # the next crossing counts only after v fell below level - band
    return np.asarray(times)


def period(t: np.ndarray, v: np.ndarray, level: float, band: float) -> float:
    """Mean interval between upward crossings (NaN with fewer than three crossings)."""
    if not np.all(np.isfinite(v)):
        return float("nan")
    c = upward_crossings(t, v, level, band)
    return float(np.mean(np.diff(c))) if c.size >= 3 else float("nan")


def periods(t: np.ndarray, y: np.ndarray, level: float, band: float) -> np.ndarray:
    """``period`` of the v component of each trajectory ``y`` (N, L, 2) at times ``t`` (N, L)."""
    return np.array([period(tt, yy[:, 0], level, band) for tt, yy in zip(t, y, strict=True)])


def time_in_band(
    t: np.ndarray,
    pred: np.ndarray,
    true: np.ndarray,
    orbit: np.ndarray,
    scale: np.ndarray,
    band: float,
    ref_period: float,
) -> np.ndarray:
    """Time each prediction stays within ``band`` of the orbit, in reference periods; (N,).

    Counted from the first time the true trajectory is within the band (NaN if it never is);
    censored at the end of the rollout. A non-finite prediction counts as outside.
    """
    if not ref_period > 0:
        raise ValueError(f"ref_period must be positive, got {ref_period}")
    ref = _scaled(orbit, scale)
    out = np.full(pred.shape[0], np.nan)
    for n in range(pred.shape[0]):
        d_true = nearest_distance(_scaled(true[n], scale), ref)
        inside = np.flatnonzero(d_true <= band)
        if inside.size == 0:
            continue
        start = inside[0]
        p = _scaled(pred[n], scale)
        finite = np.all(np.isfinite(p), axis=-1)
        d = np.full(p.shape[0], np.inf)
        d[finite] = nearest_distance(p[finite], ref)
        out_idx = np.flatnonzero(d[start:] > band)
        end = t[n, -1] if out_idx.size == 0 else t[n, start + out_idx[0]]
        out[n] = (end - t[n, start]) / ref_period
    return out


def saturation_rmse(scale: np.ndarray) -> float:
    """RMSE (over components) of two independent points of the attractor: sqrt(var_v + var_w)."""
    s = np.asarray(scale, dtype=np.float64)
    return float(np.sqrt(np.sum(s**2)))
