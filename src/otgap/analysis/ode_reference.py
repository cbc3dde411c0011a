"""The "known physics" reference of A.1: trial-solution networks that are given the equations.

The learned A.1 models see data and must find the dynamics; this reference is handed the vector
field of the system that generated the data (``otgap.data.fhn``) and solves it with
``otgap.models.ode_solver.solve_ode`` from the last context observation of a rollout. It is a
reference row (what knowing the physics buys, and at what training cost), not a competitor in
the statistical comparison.

For the first ``n_starts`` rollouts of a dataset, start i begins at the last context column
c = rollout_context - 1, state ``rollout_y[i, c]`` at time ``rollout_t[i, c]``, and predicts the
columns c+1 .. c+K of the same rollout. K is the largest count such that every start's predicted
times stay within ``span`` of its start, where span = max(forecast horizon of the test split,
``periods`` x the system's oscillation period); the long span is time-marched in windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from otgap.models.ode_solver import fhn_field, oscillation_period, solve_ode

REQUIRED_KEYS = (
    "rollout_t",
    "rollout_y",
    "rollout_context",
    "test_t",
    "n_context",
    "attractor_std",
)


def forecast_horizon(data: Mapping[str, np.ndarray]) -> float:
    """Longest forecast horizon of the test split: last time minus the last context time."""
    t = np.asarray(data["test_t"], dtype=np.float64)
    nc = int(data["n_context"])
    if not 1 <= nc <= t.shape[1]:
        raise ValueError(f"n_context={nc} does not fit test_t of shape {t.shape}")
    return float(np.max(t[:, -1] - t[:, nc - 1]))


def a1_reference(
    data: Mapping[str, np.ndarray],
    system: str,
    params: Mapping[str, float] | None = None,
    *,
    n_starts: int = 4,
    periods: float = 1.0,
    seed: int = 0,
    **options: Any,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Solve the known system from each of the first ``n_starts`` rollouts' last context state.

    Returns (arrays, info). Arrays (for ``predictions.npz``): ``rollout_index`` (n,), ``columns``
    (K,) rollout columns predicted, ``t`` (n, K), ``pred`` and ``true`` (n, K, 2), ``t_start`` (n,),
    ``y_start`` (n, 2). Info: span, period, horizon, K, per-start and total ``train_seconds``,
    ``n_params``, ``n_collocation`` and ``n_windows`` per start, the solver's error estimate per
    start and how many starts missed its tolerance (``n_failed_starts``: only with
    on_failure='flag' in ``options``, else the solve raises), and plain errors (rmse, mae,
    max_abs over all predicted points; normalised rmse by the attractor std).
    """
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise KeyError(f"dataset lacks the key(s) {missing}; it has {sorted(data)}")
    if n_starts < 1:
        raise ValueError(f"n_starts must be >= 1, got {n_starts}")
    if not periods >= 0:
        raise ValueError(f"periods must be >= 0, got {periods}")
    rt = np.asarray(data["rollout_t"], dtype=np.float64)
    ry = np.asarray(data["rollout_y"], dtype=np.float64)
    rc = int(data["rollout_context"])
    if not 1 <= rc < rt.shape[1]:
        raise ValueError(f"rollout_context={rc} must be in [1, {rt.shape[1]})")
    if rt.shape[0] < n_starts:
        raise ValueError(
            f"the dataset has {rt.shape[0]} rollouts, fewer than n_starts={n_starts}: "
            "lower systems.ode_solver.a1_reference.n_starts or raise fhn.dataset.rollout_n"
        )
    period = oscillation_period(system, params) if periods > 0 else float("nan")
    horizon = forecast_horizon(data)
    span = max(horizon, periods * period) if periods > 0 else horizon
    idx = np.arange(n_starts)
    c = rc - 1
    elapsed = rt[idx, c + 1 :] - rt[idx, c : c + 1]
    K = int(np.min(np.sum(elapsed <= span + 1e-12, axis=1)))
    if K < 1:
        raise ValueError(f"no rollout column lies within span={span:.3g} of the last context time")
    columns = np.arange(c + 1, c + 1 + K)
    f = fhn_field(system, params)
    pred = np.empty((n_starts, K, 2))
    seconds, cpu_seconds, n_windows, estimates, failed = [], [], [], [], []
    n_params = n_colloc = 0
    for i in idx:
        t_i = rt[i, columns]
        sol = solve_ode(f, ry[i, c], (rt[i, c], t_i[-1]), seed=seed + int(i), **options)
        pred[i] = sol(t_i)
        seconds.append(sol.record.train_seconds)
        cpu_seconds.append(sol.record.train_cpu_seconds)
        n_windows.append(len(sol.windows))
        estimates.append(sol.error_estimate)
        failed.append(bool(sol.failed))
        n_params, n_colloc = sol.n_params, max(n_colloc, sol.record.n_collocation)
    true = ry[idx][:, columns]
    err = pred - true
    scale = np.asarray(data["attractor_std"], dtype=np.float64)
    arrays = {
        "rollout_index": idx.astype(np.int64),
        "columns": columns.astype(np.int64),
        "t": rt[idx][:, columns],
        "pred": pred,
        "true": true,
        "t_start": rt[idx, c],
        "y_start": ry[idx, c],
    }
    info = {
        "system": system,
        "n_starts": int(n_starts),
        "period": period,
        "forecast_horizon": horizon,
        "span": span,
        "K": K,
        "train_seconds": float(np.sum(seconds)),
        "train_seconds_per_start": [float(s) for s in seconds],
        "train_cpu_seconds": float(np.sum(cpu_seconds)),
        "n_windows_per_start": n_windows,
        "error_estimate_per_start": [float(e) for e in estimates],
        "n_failed_starts": int(sum(failed)),
        "n_params": int(n_params),
        "n_collocation_per_start": int(n_colloc),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "max_abs_error": float(np.max(np.abs(err))),
        "normalised_rmse": float(np.sqrt(np.mean((err / scale) ** 2))),
    }
    return arrays, info


# ---- the reference beside the learned models (rule systems_ode_a1_table) ---------------------

TABLE_COLUMNS = (
    "system",
    "condition",
    "model",
    "kind",
    "seed",
    "n_starts",
    "n_points",
    "span",
    "rmse",
    "normalised_rmse",
    "max_abs_error",
    "train_seconds",
    "n_params",
)


def window_errors(pred: np.ndarray, true: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """RMSE, RMSE in units of the attractor's std per component, and max abs error of ``pred``
    against ``true`` (both (n, K, d)); NaN where ``pred`` has a non-finite value."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ in shape")
    if not np.all(np.isfinite(pred)):
        nan = float("nan")
        return {"rmse": nan, "normalised_rmse": nan, "max_abs_error": nan}
    err = pred - true
    scale = np.asarray(scale, dtype=np.float64)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "normalised_rmse": float(np.sqrt(np.mean((err / scale) ** 2))),
        "max_abs_error": float(np.max(np.abs(err))),
    }


def learned_on_reference_window(
    reference: Mapping[str, np.ndarray], rollout_pred: np.ndarray, scale: np.ndarray
) -> dict[str, float]:
    """Errors of a learned model's rollouts (``rollout_pred`` of its curves.npz: predictions on
    the whole rollout grid of the first trajectories) on exactly the starts and columns the
    reference predicted."""
    idx = np.asarray(reference["rollout_index"], dtype=np.int64)
    cols = np.asarray(reference["columns"], dtype=np.int64)
    rp = np.asarray(rollout_pred)
    if rp.ndim != 3 or rp.shape[0] <= idx.max() or rp.shape[1] <= cols.max():
        raise ValueError(
            f"rollout_pred of shape {rp.shape} does not hold rollouts {idx.tolist()} at columns "
            f"up to {int(cols.max())}: fhn_evaluate must keep at least {int(idx.max()) + 1} "
            "rollouts (fhn.analysis.keep_rollouts)"
        )
    return window_errors(rp[idx][:, cols], reference["true"], scale)
