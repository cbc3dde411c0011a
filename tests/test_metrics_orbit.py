"""Orbit metrics of the A.1 rollouts against hand-computed geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from otgap.metrics.orbit import (
    nearest_distance,
    orbit_distance,
    period,
    saturation_rmse,
    time_in_band,
    upward_crossings,
)

ONE = np.array([1.0, 1.0])


def circle(n=400, r=1.0):
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def test_orbit_distance_is_symmetric_and_punishes_a_still_prediction():
    ref = circle()
    # a prediction running around a circle of radius 1.1: both terms are 0.1
    on = circle(300, 1.1)[None]
    assert orbit_distance(on, ref, ONE)[0] == pytest.approx(0.1, abs=1e-3)
    # a prediction sitting still on the cycle at (1, 0): first term 0; second term is the mean
    # chord length from the circle to that point, 4/pi for the unit circle
    still = np.tile([[1.0, 0.0]], (50, 1))[None]
    assert orbit_distance(still, ref, ONE)[0] == pytest.approx(0.5 * 4 / math.pi, rel=1e-3)
    # scaling: stretching v by 2 in both sets and scaling by 2 gives the same value
    s = np.array([2.0, 1.0])
    assert orbit_distance(on * s, ref * s, s)[0] == pytest.approx(0.1, abs=1e-3)
    bad = on.copy()
    bad[0, 3] = np.nan
    assert math.isnan(orbit_distance(bad, ref, ONE)[0])


def test_nearest_distance_by_hand():
    d = nearest_distance(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 1.0], [3.0, 0.0]]))
    np.testing.assert_allclose(d, [1.0, 4.0])


def test_period_of_a_sine_and_hysteresis():
    t = np.linspace(0.0, 50.0, 5001)
    assert period(t, np.sin(2 * math.pi * t / 7.0), 0.0, 0.2) == pytest.approx(7.0, rel=1e-6)
    # small noise around the level does not add crossings
    v = np.sin(2 * math.pi * t / 7.0) + 0.05 * np.sin(2 * math.pi * t / 0.03)
    assert period(t, v, 0.0, 0.2) == pytest.approx(7.0, rel=1e-2)
    assert upward_crossings(t, np.full_like(t, 0.1), 0.0, 0.2).size == 0
    assert math.isnan(period(t, np.full_like(t, 0.1), 0.0, 0.2))


def test_time_in_band_by_hand():
    ref = circle()
    t = np.arange(10.0)[None]
    true = np.tile([[1.0, 0.0]], (10, 1))[None].copy()
    true[0, :2] = [3.0, 0.0]  # the truth enters the band at index 2
    pred = true.copy()
    pred[0, 6] = [2.0, 0.0]  # the prediction leaves at index 6
    out = time_in_band(t, pred, true, ref, ONE, 0.3, 2.0)
    assert out[0] == pytest.approx((6 - 2) / 2.0)
    # never leaving: censored at the end
    pred[0, 6] = [1.0, 0.0]
    assert time_in_band(t, pred, true, ref, ONE, 0.3, 2.0)[0] == pytest.approx((9 - 2) / 2.0)


def test_saturation_rmse_matches_independent_points():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200000, 2)) * [1.3, 0.4]
    b = rng.normal(size=(200000, 2)) * [1.3, 0.4]
    assert saturation_rmse(np.array([1.3, 0.4])) == pytest.approx(
        math.sqrt(np.mean((a - b) ** 2)), rel=1e-2
    )


def test_rollout_period_error_skips_one_reference_period():
    from otgap.metrics.forecast import period_error

    t = np.linspace(0.0, 30.0, 3001)[None]
    y = np.stack([np.sin(2 * math.pi * t / 8.0), np.zeros_like(t)], axis=-1)
    # crossings at 8, 16, 24 (0 lies inside the skipped first period): period 8 vs reference 10
    assert period_error(t, y, 0.0, 0.2, 10.0)[0] == pytest.approx(0.2, rel=1e-4)
    still = np.zeros_like(y)
    assert math.isnan(period_error(t, still, 0.0, 0.2, 10.0)[0])
