"""FitzHugh-Nagumo dynamics: the paper's unforced system and a periodically forced, chaotic variant.

    dv/dt = v - v^3/3 - w + I + amp * cos(omega * t)
    dw/dt = (v + a - b * w) / tau

The paper's system ("fhn": I=0.5, a=0.7, b=0.8, tau=12.5, amp=0) is planar and autonomous, so by
Poincare-Bendixson it cannot be chaotic: it settles on a limit cycle. The drive in "fhn_forced"
(I=0.3, amp=0.3, omega=0.8) makes the system three-dimensional (time enters) and chaotic, with a
largest Lyapunov exponent near 0.04 (Lyapunov time about 26 time units); ``lyapunov_exponent``
measures it rather than assuming it.

Integration is fixed-step RK4 in float64, vectorised over the batch: between two output times each
sample takes the same number of substeps of its own length, at most ``MAX_STEP[system]`` long. The
steps are chosen so that the error against scipy's DOP853 at rtol 1e-12 stays below 1e-6 (measured:
2.4e-7 over t = 1000 for "fhn" at 0.02; 9e-7 over t = 250 for "fhn_forced" at 0.005, where chaos
amplifies every error); tests/test_fhn.py checks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

CHAOS_THRESHOLD = 0.005  # exponents below this count as zero (limit cycle, quasi-periodic)

MAX_STEP: dict[str, float] = {"fhn": 0.02, "fhn_forced": 0.005}

SYSTEMS: dict[str, dict[str, float]] = {
    "fhn": {"a": 0.7, "b": 0.8, "tau": 12.5, "I": 0.5, "amp": 0.0, "omega": 0.0},
    "fhn_forced": {"a": 0.7, "b": 0.8, "tau": 12.5, "I": 0.3, "amp": 0.3, "omega": 0.8},
}


def system_params(system: str = "fhn", params: Mapping[str, float] | None = None) -> dict:
    """The parameter dict of ``system`` with ``params`` overriding any of a, b, tau, I, amp, omega."""
    if system not in SYSTEMS:
        raise ValueError(
            f"unknown FitzHugh-Nagumo system '{system}'; choose one of {list(SYSTEMS)}"
        )
    p = dict(SYSTEMS[system])
    for key, value in dict(params or {}).items():
        if key not in p:
            raise ValueError(
                f"unknown FitzHugh-Nagumo parameter '{key}' for system '{system}'; "
                f"allowed keys: {sorted(p)}"
            )
        p[key] = float(value)
    if p["tau"] <= 0:
        raise ValueError(f"tau must be positive, got {p['tau']}")
    return p


def vector_field(t: Any, y: Any, system: str = "fhn", params: Mapping[str, float] | None = None):
    """The right-hand side at states ``y`` (..., 2) and times ``t`` (broadcast to y[..., 0]).

    Works on numpy arrays and torch tensors alike (only arithmetic and cos are used).
    """
    p = system_params(system, params)
    v, w = y[..., 0], y[..., 1]
    dv = v - v**3 / 3.0 - w + p["I"]
    if p["amp"] != 0.0:
        if hasattr(y, "new_tensor"):  # torch
            import torch

            tt = torch.as_tensor(t, dtype=y.dtype, device=y.device)
            dv = dv + p["amp"] * torch.cos(p["omega"] * tt)
        else:
            dv = dv + p["amp"] * np.cos(p["omega"] * np.asarray(t))
    dw = (v + p["a"] - p["b"] * w) / p["tau"]
    if hasattr(y, "new_tensor"):
        import torch

        return torch.stack([dv, dw], dim=-1)
    return np.stack([dv, dw], axis=-1)


def _rk4_steps(
    v: np.ndarray, w: np.ndarray, t: np.ndarray, h: np.ndarray, n: int, p: dict
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` RK4 steps of per-sample length ``h`` from per-sample times ``t`` (all arrays (B,))."""
    a, b, inv_tau, I0, amp, om = p["a"], p["b"], 1.0 / p["tau"], p["I"], p["amp"], p["omega"]
    forced = amp != 0.0
    h2 = 0.5 * h
    h6 = h / 6.0
    third = 1.0 / 3.0
    for k in range(n):
        tk = t + k * h
        if forced:
            d0 = I0 + amp * np.cos(om * tk)
            d1 = I0 + amp * np.cos(om * (tk + h2))
            d2 = I0 + amp * np.cos(om * (tk + h))
        else:
            d0 = d1 = d2 = I0
        k1v = v - third * v * v * v - w + d0
        k1w = (v + a - b * w) * inv_tau
        v2 = v + h2 * k1v
        w2 = w + h2 * k1w
        k2v = v2 - third * v2 * v2 * v2 - w2 + d1
        k2w = (v2 + a - b * w2) * inv_tau
        v3 = v + h2 * k2v
        w3 = w + h2 * k2w
        k3v = v3 - third * v3 * v3 * v3 - w3 + d1
        k3w = (v3 + a - b * w3) * inv_tau
        v4 = v + h * k3v
        w4 = w + h * k3w
        k4v = v4 - third * v4 * v4 * v4 - w4 + d2
        k4w = (v4 + a - b * w4) * inv_tau
        v = v + h6 * (k1v + 2.0 * (k2v + k3v) + k4v)
        w = w + h6 * (k1w + 2.0 * (k2w + k3w) + k4w)
    return v, w


def simulate(y0, t, *, system: str = "fhn", params=None) -> np.ndarray:
    """Integrate a batch of trajectories and return the states at the requested times.

    ``y0`` (B, 2) holds the states at ``t[0]`` (or ``t[:, 0]``); ``t`` is (T,) shared by the batch or
    (B, T) per sample, strictly increasing along the last axis, in absolute time (the drive of
    "fhn_forced" depends on it). Returns float64 states of shape (B, T, 2).
    """
    p = system_params(system, params)
    y0 = np.asarray(y0, dtype=np.float64)
    if y0.ndim != 2 or y0.shape[1] != 2:
        raise ValueError(f"y0 must have shape (B, 2), got {y0.shape}")
    B = y0.shape[0]
    tt = np.asarray(t, dtype=np.float64)
    if tt.ndim == 1:
        tt = np.broadcast_to(tt, (B, tt.shape[0]))
    if tt.ndim != 2 or tt.shape[0] != B:
        raise ValueError(f"t must have shape (T,) or (B, T) with B={B}, got {np.shape(t)}")
    if tt.shape[1] == 0:
        raise ValueError("t must hold at least one time")
    if not (np.all(np.isfinite(tt)) and np.all(np.isfinite(y0))):
        raise ValueError("t and y0 must be finite")
    gaps = np.diff(tt, axis=1)
    if np.any(gaps <= 0):
        raise ValueError("t must be strictly increasing along its last axis")
    T = tt.shape[1]
    max_step = MAX_STEP[system]
    out = np.empty((B, T, 2), dtype=np.float64)
    out[:, 0] = y0
    v = y0[:, 0].copy()
    w = y0[:, 1].copy()
    for i in range(1, T):
        gap = gaps[:, i - 1]
        n = max(1, math.ceil(float(gap.max()) / max_step - 1e-9))
        v, w = _rk4_steps(v, w, tt[:, i - 1], gap / n, n, p)
        out[:, i, 0] = v
        out[:, i, 1] = w
    return out


def lyapunov_exponent(
    system: str = "fhn_forced",
    params=None,
    *,
    t_total: float = 3000.0,
    dt: float = 0.01,
    seed: int = 0,
) -> float:
    """Largest Lyapunov exponent by the tangent-system method (Benettin renormalisation).

    The state and one tangent vector are integrated together with RK4 of step ``dt``; the tangent
    vector is renormalised every time unit and the log growth accumulated. The first 10% of
    ``t_total`` (at least 100 time units) is a discarded transient. The initial state and tangent
    direction are drawn from ``seed``. For the unforced limit cycle the exponent is zero (the
    tangent along the flow neither grows nor shrinks), so the estimate is a check of the method.
    """
    p = system_params(system, params)
    if t_total <= 0 or dt <= 0 or dt > 1.0:
        raise ValueError(f"need t_total > 0 and 0 < dt <= 1, got t_total={t_total}, dt={dt}")
    rng = np.random.default_rng(seed)
    v, w = (float(x) for x in rng.uniform(-2.0, 2.0, size=2))
    dx, dy = (float(x) for x in rng.normal(size=2))
    norm = math.hypot(dx, dy)
    dx, dy = dx / norm, dy / norm
    a, b, inv_tau, I0, amp, om = p["a"], p["b"], 1.0 / p["tau"], p["I"], p["amp"], p["omega"]
    steps_per_unit = max(1, round(1.0 / dt))
    h = 1.0 / steps_per_unit
    n_units = int(t_total)
    transient = max(100, n_units // 10)
    if n_units <= transient:
        raise ValueError(f"t_total={t_total} is too short: need more than {transient} time units")

    def f(t, v, w, dx, dy):
        drive = I0 + amp * math.cos(om * t) if amp else I0
        return (
            v - v * v * v / 3.0 - w + drive,
            (v + a - b * w) * inv_tau,
            (1.0 - v * v) * dx - dy,
            (dx - b * dy) * inv_tau,
        )

    t = 0.0
    log_sum = 0.0
    for unit in range(n_units):
        for _ in range(steps_per_unit):
            k1 = f(t, v, w, dx, dy)
            k2 = f(
                t + h / 2,
                v + h / 2 * k1[0],
                w + h / 2 * k1[1],
                dx + h / 2 * k1[2],
                dy + h / 2 * k1[3],
            )
            k3 = f(
                t + h / 2,
                v + h / 2 * k2[0],
                w + h / 2 * k2[1],
                dx + h / 2 * k2[2],
                dy + h / 2 * k2[3],
            )
            k4 = f(t + h, v + h * k3[0], w + h * k3[1], dx + h * k3[2], dy + h * k3[3])
            v += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            w += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            dx += h / 6 * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
            dy += h / 6 * (k1[3] + 2 * k2[3] + 2 * k3[3] + k4[3])
            t += h
        norm = math.hypot(dx, dy)
        if not math.isfinite(norm) or norm == 0.0:
            raise FloatingPointError(f"tangent vector degenerated at t={t:.1f} (norm {norm})")
        dx, dy = dx / norm, dy / norm
        if unit >= transient:
            log_sum += math.log(norm)
    return log_sum / (n_units - transient)


def attractor_std(
    system: str,
    params: Mapping[str, float] | None = None,
    *,
    burn_in: float = 200.0,
    duration: float = 1000.0,
    seed: int = 0,
) -> np.ndarray:
    """Standard deviation of v and w on the attractor (4 trajectories of ``duration`` time units)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x41545452]))
    y0 = rng.uniform(-2.0, 2.0, size=(4, 2))
    t = np.arange(0.0, burn_in + duration + 1e-9, 0.5)
    y = simulate(y0, t, system=system, params=dict(params or {}))
    return y[:, t >= burn_in].reshape(-1, 2).std(axis=0)


def drive_period(system: str, params: Mapping[str, float] | None = None) -> float:
    p = system_params(system, params)
    return 2.0 * math.pi / p["omega"] if p["amp"] != 0.0 else 0.0


def attractor_orbit(
    system: str,
    params: Mapping[str, float] | None = None,
    *,
    burn_in: float = 200.0,
    duration: float | None = None,
    dt: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """A dense, time-ordered sample of the attractor (M, 2) and its period.

    One trajectory from a random state, after ``burn_in``. ``duration`` defaults to 200 time units
    for the limit cycle (about five periods) and 600 for the forced system. The period is the
    mean time between upward crossings of v through its mean (the cycle's period; for the chaotic
    system the mean interval between spikes).
    """
    from otgap.metrics.orbit import period as crossing_period

    if duration is None:
        duration = 600.0 if drive_period(system, params) > 0 else 200.0
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x4F524254]))
    y0 = rng.uniform(-2.0, 2.0, size=(1, 2))
    t = np.arange(0.0, burn_in + duration + 1e-9, dt)
    y = simulate(y0, t, system=system, params=dict(params or {}))[0]
    keep = t >= burn_in
    pts, tt = y[keep], t[keep]
    level = float(pts[:, 0].mean())
    per = crossing_period(tt, pts[:, 0], level, 0.25 * float(pts[:, 0].std()))
    if not np.isfinite(per):
        raise ValueError(f"{system}: no oscillation on the attractor to take a period from")
    return pts, per
