"""Irregular time grids and observation masks, reproducible from a seed.

The paper jitters each time step, dt_i = dt + U(-jitter, jitter), floored at 0.1, but observes every
point. Here a sequence additionally has a context window whose points are split into held-out
interpolation targets (a fixed fraction, never the first point) and a dense grid of the remaining
points of which a fraction ``obs_fraction`` is observed (the first point always is). The points after
the context window form the forecast horizon: never observed, the extrapolation targets.
"""

from __future__ import annotations

import numpy as np

MIN_DT = 0.1


def jittered_times(
    rng: np.random.Generator,
    n: int,
    length: int,
    dt: float,
    jitter: float,
    t0: np.ndarray | float = 0.0,
    min_dt: float = MIN_DT,
) -> np.ndarray:
    """Times (n, length) starting at ``t0`` with steps dt + U(-jitter, jitter), floored at min_dt."""
    if dt <= 0:
        raise ValueError(f"dt must be positive, got {dt}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0, got {jitter}")
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}")
    steps = (
        dt + rng.uniform(-jitter, jitter, size=(n, length - 1))
        if jitter > 0
        else np.full((n, length - 1), float(dt))
    )
    steps = np.maximum(steps, min_dt)
    start = np.broadcast_to(np.asarray(t0, dtype=np.float64), (n,))
    times = np.empty((n, length), dtype=np.float64)
    times[:, 0] = start
    times[:, 1:] = start[:, None] + np.cumsum(steps, axis=1)
    return times


def _random_subset(rng: np.random.Generator, n: int, m: int, k: int) -> np.ndarray:
    """Boolean (n, m): in each row exactly k True at positions drawn without replacement."""
    if k <= 0:
        return np.zeros((n, m), dtype=bool)
    order = np.argsort(rng.random((n, m)), axis=1)
    chosen = np.zeros((n, m), dtype=bool)
    np.put_along_axis(chosen, order[:, :k], True, axis=1)
    return chosen


def observation_masks(
    rng: np.random.Generator,
    n: int,
    n_context: int,
    length: int,
    obs_fraction: float,
    holdout_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Observation and interpolation-target masks, each (n, length) bool and disjoint.

    Of the context points after the first, ``round(holdout_fraction * (n_context - 1))`` are held
    out as targets; of the rest, ``max(1, round(obs_fraction * rest))`` are observed. Every row has
    the same counts, so sequences are comparable; which points is random per row.
    """
    if not 0.0 < obs_fraction <= 1.0:
        raise ValueError(f"obs_fraction must lie in (0, 1], got {obs_fraction}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must lie in [0, 1), got {holdout_fraction}")
    if n_context < 2 or n_context > length:
        raise ValueError(
            f"need 2 <= n_context <= length, got n_context={n_context}, length={length}"
        )
    m = n_context - 1
    n_target = int(round(holdout_fraction * m))
    rest = m - n_target
    n_obs = max(1, int(round(obs_fraction * rest))) if rest > 0 else 0
    target_part = _random_subset(rng, n, m, n_target)
    # choose the observed points among the non-target ones: rank random keys, targets last
    keys = rng.random((n, m)) + target_part.astype(np.float64) * 2.0
    order = np.argsort(keys, axis=1)
    obs_part = np.zeros((n, m), dtype=bool)
    if n_obs:
        np.put_along_axis(obs_part, order[:, :n_obs], True, axis=1)
    obs = np.zeros((n, length), dtype=bool)
    target = np.zeros((n, length), dtype=bool)
    obs[:, 0] = True
    obs[:, 1:n_context] = obs_part
    target[:, 1:n_context] = target_part
    return obs, target
