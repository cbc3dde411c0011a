"""One FitzHugh-Nagumo dataset per (system, sampling condition, seed), shared by every model.

Initial states follow the paper's mix: a fraction ``1 - attractor_fraction`` (paper: 60%) drawn from
U(-2, 2)^2 and the rest on the attractor (the limit cycle of "fhn", the chaotic set of
"fhn_forced"), reached by a burn-in from U(-2, 2)^2 and perturbed with N(0, 0.05) noise. Sequences of
the forced system start at a random phase of the drive. Initial states depend only on (system, seed),
so every sampling condition of a seed sees the same trajectories: comparisons across conditions and
across models are paired.

Long rollouts are scored on a grid whose jitter matches the condition's (``rollout_jitter: null``,
the default), so no model is scored on gaps it never saw in training; ``rollout_unseen_jitter``
(the original fixed 0.45) adds a second, labelled "unseen gaps" set of rollouts from the same
initial states (keys ``rollout_unseen_t``/``rollout_unseen_y``). A number for ``rollout_jitter``
restores the original single fixed grid.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from otgap.data.fhn import (  # noqa: F401 - drive_period, attractor_orbit re-exported
    CHAOS_THRESHOLD,
    attractor_orbit,
    drive_period,
    simulate,
    system_params,
)
from otgap.data.masks import jittered_times, observation_masks

SPLITS = ("train", "val", "test")


def stream(seed: int, *names: str) -> np.random.Generator:
    """An independent random stream for ``seed`` and a label (stable across runs and machines)."""
    keys = [zlib.crc32(name.encode()) for name in names]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *keys]))


@dataclass(frozen=True)
class Condition:
    """A sampling condition: jitter of the time steps and the observed fraction of the grid."""

    name: str
    jitter: float
    obs_fraction: float

    def __post_init__(self) -> None:
        if not 0.0 < self.obs_fraction <= 1.0:
            raise ValueError(
                f"condition '{self.name}': obs_fraction must lie in (0, 1], got {self.obs_fraction}"
            )
        if self.jitter < 0:
            raise ValueError(f"condition '{self.name}': jitter must be >= 0, got {self.jitter}")


@dataclass(frozen=True)
class DatasetSpec:
    n_train: int = 300
    n_val: int = 60
    n_test: int = 100
    n_context: int = 40
    horizon: int = 20
    dt: float = 0.5
    holdout_fraction: float = 0.2
    attractor_fraction: float = 0.4
    attractor_noise: float = 0.05
    burn_in: float = 200.0
    rollout_n: int = 20
    rollout_length: int = 2000
    rollout_jitter: float | None = None
    rollout_unseen_jitter: float | None = 0.45
    rollout_context: int | None = None  # None: n_context (the rollouts warm up as training does)
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("n_train", "n_val", "n_test", "rollout_n"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.n_context < 2:
            raise ValueError(f"n_context must be >= 2, got {self.n_context}")
        if self.horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {self.horizon}")
        if self.rollout_context is None:
            object.__setattr__(self, "rollout_context", int(self.n_context))
        if not 1 <= self.rollout_context < self.rollout_length:
            raise ValueError("need 1 <= rollout_context < rollout_length")


def initial_states(
    rng: np.random.Generator, n: int, system: str, spec: DatasetSpec
) -> tuple[np.ndarray, np.ndarray]:
    """States (n, 2) and start times (n,) following the paper's mix of initial states."""
    period = drive_period(system, spec.params)
    y0 = rng.uniform(-2.0, 2.0, size=(n, 2))
    t0 = rng.uniform(0.0, period, size=n) if period > 0 else np.zeros(n)
    on_attractor = rng.random(n) < spec.attractor_fraction
    idx = np.flatnonzero(on_attractor)
    if idx.size:
        start = rng.uniform(-2.0, 2.0, size=(idx.size, 2))
        grid = np.stack([t0[idx], t0[idx] + spec.burn_in], axis=1)
        settled = simulate(start, grid, system=system, params=dict(spec.params))[:, -1]
        y0[idx] = settled + rng.normal(0.0, spec.attractor_noise, size=settled.shape)
    if period > 0:  # every forced sequence starts after the burn-in, at a random drive phase
        t0 = t0 + spec.burn_in
    return y0, t0


def build_dataset(
    system: str,
    condition: Condition,
    seed: int,
    spec: DatasetSpec,
    lyapunov: float,
    attractor_scale: np.ndarray,
    orbit: np.ndarray | None = None,
    orbit_period: float | None = None,
) -> dict[str, np.ndarray]:
    """Simulate and mask one dataset; returns the arrays of ``dataset.npz`` (see the module doc).

    ``lyapunov``, ``attractor_scale`` (std of v and w on the attractor), ``orbit`` (a dense sample
    of the attractor, (M, 2)) and ``orbit_period`` are properties of the system, computed once per
    system by the workflow and stored with every dataset.
    """
    length = spec.n_context + spec.horizon
    sizes = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    total = sum(sizes.values())
    # initial states of all splits in one batch (one burn-in), then split in a fixed order
    y0, t0 = initial_states(stream(seed, system, "init"), total, system, spec)
    rng = stream(seed, system, "grid", condition.name)
    t = jittered_times(rng, total, length, spec.dt, condition.jitter, t0)
    y = simulate(y0, t, system=system, params=dict(spec.params))
    obs, target = observation_masks(
        rng, total, spec.n_context, length, condition.obs_fraction, spec.holdout_fraction
    )
    arrays: dict[str, np.ndarray] = {}
    start = 0
    for split in SPLITS:
        part = slice(start, start + sizes[split])
        start += sizes[split]
        arrays[f"{split}_t"] = t[part]
        arrays[f"{split}_y"] = y[part]
        arrays[f"{split}_obs"] = obs[part]
        arrays[f"{split}_target"] = target[part]
    # long rollouts from new states drawn uniformly, as in the paper's test
    rng = stream(seed, system, "rollout")
    y0 = rng.uniform(-2.0, 2.0, size=(spec.rollout_n, 2))
    period = drive_period(system, spec.params)
    t0 = rng.uniform(0.0, period, size=spec.rollout_n) if period > 0 else np.zeros(spec.rollout_n)
    if period > 0:
        # chaotic system: start the rollouts on the attractor, so that the valid prediction time
        # measures error growth on the attractor rather than the approach to it
        grid = np.stack([t0, t0 + spec.burn_in], axis=1)
        y0 = simulate(y0, grid, system=system, params=dict(spec.params))[:, -1]
        t0 = grid[:, -1]
    jitter = condition.jitter if spec.rollout_jitter is None else spec.rollout_jitter
    grids = {"rollout": jitter}
    if spec.rollout_unseen_jitter is not None:
        grids["rollout_unseen"] = spec.rollout_unseen_jitter
    for key, jit in grids.items():
        g = stream(seed, system, key, "grid")
        t = jittered_times(g, spec.rollout_n, spec.rollout_length, spec.dt, jit, t0)
        arrays[f"{key}_t"] = t
        arrays[f"{key}_y"] = simulate(y0, t, system=system, params=dict(spec.params))
        arrays[f"{key}_jitter"] = np.asarray(jit, dtype=np.float64)
    arrays["rollout_context"] = np.asarray(spec.rollout_context, dtype=np.int64)
    arrays["n_context"] = np.asarray(spec.n_context, dtype=np.int64)
    arrays["attractor_std"] = np.asarray(attractor_scale, dtype=np.float64)
    if orbit is not None:
        arrays["attractor_orbit"] = np.asarray(orbit, dtype=np.float64)
        arrays["attractor_period"] = np.asarray(orbit_period, dtype=np.float64)
    arrays["lyapunov"] = np.asarray(lyapunov, dtype=np.float64)
    arrays["lyapunov_time"] = np.asarray(1.0 / lyapunov if lyapunov > CHAOS_THRESHOLD else np.nan)
    return arrays
