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


def test_errors_table_is_booktabs_with_one_row_per_problem():
    frame = pd.DataFrame(
        {
            "problem": ["decay", "fhn_short"],
            "max_abs_error": [6.5e-5, 9.7e-4],
            "rms_error": [3.4e-5, 5.8e-4],
            "n_collocation": [32, 64],
            "n_params": [321, 338],
            "train_seconds": [3.5, 4.0],
        }
    )
    tex = errors_table(frame)
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert r"fhn\_short & $9.70e-04$ & $5.80e-04$ & 64 & 338 & 4.0 \\" in tex
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
    assert ode["problems"] == ["decay", "logistic", "dydx", "fhn", "fhn_forced"]
    assert ode["a1_reference"] == {"enabled": True, "n_starts": 4, "periods": 1.0}
    cfg = load_config(REPO / "config" / "config.yaml")
    cfg["systems"]["ode_solver"]["a1_reference"]["options"] = {"widht": 8}
    with pytest.raises(ConfigError, match="systems.ode_solver.a1_reference.options"):
        validate_config(cfg, schema)
    cfg = load_config(REPO / "config" / "config.yaml")
    cfg["systems"]["ode_solver"]["problems"] = ["lorenz"]
    with pytest.raises(ConfigError, match="systems.ode_solver.problems"):
        validate_config(cfg, schema)
