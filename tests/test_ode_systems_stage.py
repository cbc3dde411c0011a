"""The systems stage of the ODE-solving networks: A.1 reference, table and figure helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from otgap.analysis.ode_reference import a1_reference, forecast_horizon
from otgap.tables.ode_solver import errors_table


def fhn_truth(y0, t):
    """DOP853 on the paper's unforced FitzHugh-Nagumo equations, written out here."""

    def rhs(_, y):
        v, w = y
        return [v - v**3 / 3.0 - w + 0.5, (v + 0.7 - 0.8 * w) / 12.5]

    sol = solve_ivp(rhs, (t[0], t[-1]), y0, method="DOP853", rtol=1e-12, atol=1e-12, t_eval=t)
    return sol.y.T


def synthetic_dataset(n_rollouts=2, rc=3, dt=0.5, length=40):
    rng = np.random.default_rng(0)
    rt = np.cumsum(dt * (1 + 0.2 * rng.uniform(-1, 1, size=(n_rollouts, length))), axis=1)
    y0 = [[-1.0, 0.5], [1.5, -0.2], [0.0, 0.0]][:n_rollouts]
    ry = np.stack([fhn_truth(y0[i], rt[i]) for i in range(n_rollouts)])
    test_t = np.tile(np.arange(8) * dt, (3, 1))
    return {
        "rollout_t": rt,
        "rollout_y": ry,
        "rollout_context": np.asarray(rc),
        "test_t": test_t,
        "n_context": np.asarray(6),
        "attractor_std": np.array([1.0, 0.5]),
    }


def test_forecast_horizon_is_the_time_after_the_last_context_point():
    data = synthetic_dataset()
    assert forecast_horizon(data) == pytest.approx(1.0)  # columns 5 -> 7 at dt 0.5


def test_a1_reference_predicts_the_rollout_from_its_last_context_state():
    data = synthetic_dataset()
    # periods=0: the span is the forecast horizon (1 time unit), one window per start
    arrays, info = a1_reference(data, "fhn", n_starts=2, periods=0.0, adam_steps=50, lbfgs_steps=60)
    rt, ry = data["rollout_t"], data["rollout_y"]
    K = info["K"]
    assert K >= 1 and info["span"] == pytest.approx(1.0)
    np.testing.assert_array_equal(arrays["columns"], np.arange(3, 3 + K))
    np.testing.assert_array_equal(arrays["t"], rt[:, 3 : 3 + K])
    np.testing.assert_array_equal(arrays["y_start"], ry[:, 2])
    # every predicted time within the span of its start, and the next one beyond it for some start
    assert np.all(arrays["t"] - rt[:, 2:3] <= 1.0 + 1e-12)
    assert np.any(rt[:, 3 + K] - rt[:, 2] > 1.0)
    assert arrays["pred"].shape == (2, K, 2)
    err = np.abs(arrays["pred"] - ry[:, 3 : 3 + K])
    assert err.max() <= 2e-2
    assert info["rmse"] == pytest.approx(math.sqrt(np.mean(err**2)))
    assert info["train_seconds"] > 0 and info["n_params"] > 0


def test_a1_reference_rejects_too_few_rollouts_before_training():
    data = synthetic_dataset(n_rollouts=2)
    with pytest.raises(ValueError, match="fewer than n_starts"):
        a1_reference(data, "fhn", n_starts=4)
    bad = dict(data)
    del bad["test_t"]
    with pytest.raises(KeyError, match="test_t"):
        a1_reference(bad, "fhn")


def stage_metrics():
    """metrics.json of one problem as systems_ode_solve writes it (three seeds)."""
    seed_rows = [
        {"seed": 0, "max_abs_error": 2e-3, "error_estimate": 2.1e-3, "failed": 0},
        {"seed": 1, "max_abs_error": 9e-3, "error_estimate": 8.8e-3, "failed": 0},
        {"seed": 2, "max_abs_error": 4e-2, "error_estimate": 3.9e-2, "failed": 1},
    ]
    for i, r in enumerate(seed_rows):
        r.update(n_windows=8 + i, n_params=338, train_seconds=10.0 + 2 * i)
    classical = {
        "method": "DOP853",
        "rtol": 1e-6,
        "atol": 1e-9,
        "max_abs_error": 1.7e-4,
        "seconds": 0.013,
    }
    return {"problem": "fhn", "tol": 0.01, "seeds": seed_rows, "classical": classical}


def test_summary_rows_median_worst_and_the_classical_row():
    from otgap.tables.ode_solver import COLUMNS, summary_rows

    network, classical = summary_rows(stage_metrics())
    assert set(network) == set(COLUMNS) == set(classical)
    # by hand: errors 2e-3, 9e-3, 4e-2 -> median 9e-3, worst 4e-2 from seed 2
    assert network["median_max_abs_error"] == pytest.approx(9e-3)
    assert network["worst_max_abs_error"] == pytest.approx(4e-2)
    assert network["worst_seed"] == "2" and network["n_failed"] == 1
    assert network["max_error_estimate"] == pytest.approx(3.9e-2)
    assert network["median_windows"] == 9 and network["median_seconds"] == 12.0
    assert network["tolerance"] == "tol 0.01" and network["n_seeds"] == 3
    assert classical["method"] == "DOP853" and classical["tolerance"] == "rtol 1e-06, atol 1e-09"
    assert classical["worst_max_abs_error"] == pytest.approx(1.7e-4)


def test_errors_table_is_booktabs_with_a_network_and_a_classical_row():
    from otgap.tables.ode_solver import COLUMNS, summary_rows

    frame = pd.DataFrame(summary_rows(stage_metrics()))[list(COLUMNS)]
    tex = errors_table(frame)
    assert r"\toprule" in tex and r"\bottomrule" in tex
    rows = [ln for ln in tex.splitlines() if ln.endswith(r"\\") and "&" in ln]
    assert rows[1].startswith(r"fhn & network (tol 0.01) & 3 & $9.00e-03$ & $4.00e-02$ (2)")
    assert r"\textbf{1}" in rows[1]  # a seed that missed the tolerance stands out
    assert rows[2].startswith(r"fhn & DOP853 (rtol 1e-06, atol 1e-09) & 1 & $1.70e-04$")
    with pytest.raises(KeyError, match="n_params"):
        errors_table(frame.drop(columns="n_params"))


def test_config_section_defaults_and_typos():
    from otgap.config import ConfigError, load_config, validate_config

    from .conftest import REPO

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    cfg = load_config(REPO / "config" / "config.yaml")
    del cfg["systems"]
    validate_config(cfg, schema)
    ode = cfg["systems"]["ode_solver"]
    assert ode["problems"] == ["decay", "logistic", "dydx", "fhn", "fhn_forced", "vdp"]
    assert ode["seeds"] == [0, 1, 2, 3, 4]
    assert ode["a1_reference"] == {"enabled": True, "n_starts": 4, "periods": 1.0}
    cfg = load_config(REPO / "config" / "config.yaml")
    cfg["systems"]["ode_solver"]["a1_reference"]["options"] = {"widht": 8}
    with pytest.raises(ConfigError, match="systems.ode_solver.a1_reference.options"):
        validate_config(cfg, schema)
    cfg = load_config(REPO / "config" / "config.yaml")
    cfg["systems"]["ode_solver"]["problems"] = ["lorenz"]
    with pytest.raises(ConfigError, match="systems.ode_solver.problems"):
        validate_config(cfg, schema)


# ---- the reference beside the learned models (systems_ode_a1_table) ---------------------------
def test_window_errors_by_hand():
    from otgap.analysis.ode_reference import window_errors

    true = np.zeros((1, 2, 2))
    pred = np.array([[[3.0, 0.0], [0.0, 4.0]]])
    out = window_errors(pred, true, np.array([1.0, 2.0]))
    # squared errors 9, 0, 0, 16 -> mean 25/4; scaled: 9, 0, 0, 4 -> mean 13/4
    assert out["rmse"] == pytest.approx(2.5)
    assert out["normalised_rmse"] == pytest.approx(math.sqrt(13 / 4))
    assert out["max_abs_error"] == 4.0
    pred[0, 0, 0] = np.inf
    assert all(math.isnan(v) for v in window_errors(pred, true, np.ones(2)).values())


def test_learned_model_is_scored_on_the_reference_starts_and_columns_only():
    from otgap.analysis.ode_reference import learned_on_reference_window

    rng = np.random.default_rng(1)
    n, length = 4, 30
    truth = rng.normal(size=(n, length, 2))
    columns = np.arange(10, 17)
    reference = {
        "rollout_index": np.arange(3),
        "columns": columns,
        "true": truth[:3][:, columns],
    }
    # exact on the scored window, wildly wrong everywhere else (context, later points, rollout 3)
    rollout_pred = truth + 100.0
    rollout_pred[:3, 10:17] = truth[:3, 10:17] + 0.5
    out = learned_on_reference_window(reference, rollout_pred, np.ones(2))
    assert out["rmse"] == pytest.approx(0.5)
    assert out["max_abs_error"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="keep_rollouts"):
        learned_on_reference_window(reference, rollout_pred[:2], np.ones(2))


def test_a1_reference_table_puts_the_reference_first_with_no_marks():
    from otgap.tables.ode_solver import a1_reference_table

    rows = []
    for seed in (0, 1):
        for model, rmse in (("neural_ode", 0.2 + seed), ("reference", 0.001), ("grud", np.nan)):
            rows.append(
                {
                    "system": "fhn",
                    "condition": "jitter",
                    "model": model,
                    "kind": "reference" if model == "reference" else "learned",
                    "seed": seed,
                    "n_starts": 4,
                    "n_points": 38,
                    "span": 19.7,
                    "rmse": rmse,
                    "normalised_rmse": rmse,
                    "max_abs_error": rmse,
                    "train_seconds": 10.0 + seed,
                    "n_params": 10,
                }
            )
    tex = a1_reference_table(pd.DataFrame(rows), ["grud", "neural_ode"])
    body = tex.split(r"\midrule")
    lines = [ln for ln in tex.splitlines() if ln.endswith(r"\\") and "&" in ln]
    assert lines[1].startswith("known physics (trial solution)")
    assert lines[2].startswith("grud") and "non-finite (2 of 2)" in lines[2]
    # neural_ode: mean 0.7, sample std 0.707; training 10.5 +- 0.7 s
    assert "$7.00e-01 \\pm 7.1e-01$" in lines[3] and "10.5 $\\pm$ 0.7" in lines[3]
    assert "first 4 rollouts, 38 points over 19.7 time units" in tex
    assert "dagger" not in tex and "textbf" not in tex and len(body) == 3
