"""Forecast errors, chaos diagnostics and statistics, against hand computations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from otgap.metrics.chaos import (
    error_growth,
    moving_average,
    phase_space_divergence,
    valid_prediction_time,
)
from otgap.metrics.errors import (
    masked_mae,
    masked_rmse,
    normalised_error,
    per_sequence_rmse,
    phase_space_distance,
)
from otgap.metrics.stats import (
    WILCOXON_MIN_N,
    compare_with_reference,
    holm,
    paired_test,
    summarise,
    summary_table,
)

# ---- errors ---------------------------------------------------------------------------------


def test_masked_rmse_and_mae_by_hand():
    true = np.zeros((1, 3, 2))
    pred = np.array([[[3.0, 4.0], [1.0, -1.0], [100.0, 100.0]]])
    mask = np.array([[True, True, False]])
    # selected components: 3, 4, 1, -1 -> mean square (9 + 16 + 1 + 1) / 4 = 6.75
    assert masked_rmse(pred, true, mask) == pytest.approx(math.sqrt(6.75))
    assert masked_mae(pred, true, mask) == pytest.approx((3 + 4 + 1 + 1) / 4)
    assert math.isnan(masked_rmse(pred, true, np.zeros((1, 3), bool)))
    np.testing.assert_allclose(per_sequence_rmse(pred, true, mask), [math.sqrt(6.75)])


def test_per_sequence_rmse_nan_for_empty_rows():
    pred = np.ones((2, 2, 2))
    true = np.zeros((2, 2, 2))
    out = per_sequence_rmse(pred, true, np.array([[True, False], [False, False]]))
    assert out[0] == pytest.approx(1.0) and math.isnan(out[1])


def test_error_shapes_are_checked():
    with pytest.raises(ValueError, match="shape"):
        masked_rmse(np.zeros((2, 3, 2)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="mask must have shape"):
        masked_rmse(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="positive"):
        phase_space_distance(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.array([1.0, 0.0]))


def test_phase_space_distance_and_normalised_error_by_hand():
    true = np.zeros((1, 2, 2))
    pred = np.array([[[2.0, 0.5], [0.0, 0.0]]])
    scale = np.array([2.0, 0.25])
    # scaled error (1, 2): distance sqrt(5); RMS over components sqrt(5/2)
    np.testing.assert_allclose(phase_space_distance(pred, true, scale), [[math.sqrt(5), 0.0]])
    np.testing.assert_allclose(normalised_error(pred, true, scale), [[math.sqrt(2.5), 0.0]])
    assert phase_space_divergence(pred, true, scale) == pytest.approx(math.sqrt(5) / 2)


# ---- chaos ----------------------------------------------------------------------------------


def test_valid_prediction_time_by_hand():
    t = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    err = np.array(
        [
            [0.1, 0.2, 0.5, 0.1],  # exceeds at t=3: last valid t=2, VPT = (2-0)/2 = 1
            [0.9, 0.1, 0.1, 0.1],  # exceeds at the first prediction: 0
            [0.1, 0.1, 0.1, 0.1],  # never: censored at the whole rollout (4-0)/2 = 2
        ]
    )
    out = valid_prediction_time(t, np.zeros(3), err, lyapunov_time=2.0, threshold=0.4)
    np.testing.assert_allclose(out, [1.0, 0.0, 2.0])
    # a NaN error (blown-up rollout) ends the valid time
    err[2, 1] = np.nan
    assert valid_prediction_time(t, np.zeros(3), err, 2.0)[2] == pytest.approx(0.5)
    assert np.isnan(valid_prediction_time(t, np.zeros(3), err, float("nan"))).all()
    with pytest.raises(ValueError, match="positive"):
        valid_prediction_time(t, np.zeros(3), err, -1.0)


def test_error_growth_and_moving_average():
    err = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    mean, std = error_growth(err)
    np.testing.assert_allclose(mean, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(std, [math.sqrt(2), 0.0, math.sqrt(2)])
    np.testing.assert_allclose(
        moving_average(np.array([1.0, 2.0, 3.0, 10.0]), 3), [1.5, 2.0, 5.0, 6.5]
    )
    np.testing.assert_allclose(moving_average(np.arange(4.0), 1), np.arange(4.0))


# ---- statistics -----------------------------------------------------------------------------


def test_summarise_matches_scipy_t_interval():
    x = np.array([1.0, 2.5, 2.0, 4.0, 3.1])
    s = summarise(x)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert s["mean"] == pytest.approx(x.mean())
    assert s["std"] == pytest.approx(x.std(ddof=1))
    assert s["ci_low"] == pytest.approx(lo) and s["ci_high"] == pytest.approx(hi)
    assert s["n"] == 5
    one = summarise([np.nan, 2.0])
    assert one["n"] == 1 and one["n_nonfinite"] == 1 and math.isnan(one["ci95"])


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    out = holm([0.02, np.nan, 0.01])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    assert np.isnan(out[1])


def test_paired_test_matches_scipy_and_wilcoxon_rule():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5)
    b = a + 0.3 + 0.1 * rng.normal(size=5)
    r = paired_test(a, b)
    ref = sps.ttest_rel(a, b)
    assert r["p_ttest"] == pytest.approx(ref.pvalue)
    assert r["t_stat"] == pytest.approx(ref.statistic)
    assert math.isnan(r["p_wilcoxon"]) and "no Wilcoxon test" in r["note"]
    # the smallest exact two-sided p with n pairs is 2/2^n: below 0.05 first at n = 6
    assert 2 / 2**5 > 0.05 and 2 / 2**6 < 0.05 and WILCOXON_MIN_N == 6
    a6 = rng.normal(size=6)
    b6 = a6 + np.arange(1, 7) * 0.1
    r6 = paired_test(a6, b6)
    assert r6["p_wilcoxon"] == pytest.approx(sps.wilcoxon(a6, b6).pvalue)
    assert r6["p_wilcoxon"] == pytest.approx(2 / 2**6)
    const = paired_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert math.isnan(const["p_ttest"]) and "constant" in const["note"]
    # two seeds: no p-value at all (a t-test with one degree of freedom says nothing)
    two = paired_test([1.0, 2.0], [0.5, 1.7])
    assert math.isnan(two["p_ttest"]) and "no p-value" in two["note"]


def test_summarise_log_back_transforms_the_log_t_interval():
    from otgap.metrics.stats import summarise_log

    x = np.array([0.1, 0.4, 0.2, 1.6])
    logs = np.log(x)
    half = sps.t.ppf(0.975, 3) * logs.std(ddof=1) / 2.0
    out = summarise_log(x)
    assert out["gmean"] == pytest.approx(math.exp(logs.mean()))
    assert out["gci_low"] == pytest.approx(math.exp(logs.mean() - half))
    assert out["gci_high"] == pytest.approx(math.exp(logs.mean() + half))
    assert 0 < out["gci_low"] < out["gmean"] < out["gci_high"]  # positive, never clipped


def _runs(n_seeds=3):
    rows = []
    rng = np.random.default_rng(1)
    for seed in range(n_seeds):
        for model, base in (("ref", 1.0), ("a", 2.0), ("b", 1.01)):
            rows.append(
                {
                    "system": "fhn",
                    "condition": "c",
                    "model": model,
                    "seed": seed,
                    "rmse": base + 0.01 * rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_compare_with_reference_holm_family():
    frame = _runs(4)
    out = compare_with_reference(frame, reference="ref", metrics=["rmse"])
    assert sorted(out["model"]) == ["a", "b"]
    p = out.set_index("model")["p_ttest"]
    ref = frame[frame.model == "ref"].sort_values("seed")["rmse"].to_numpy()
    for m in ("a", "b"):
        other = frame[frame.model == m].sort_values("seed")["rmse"].to_numpy()
        assert p[m] == pytest.approx(sps.ttest_rel(ref, other).pvalue)
    np.testing.assert_allclose(out["p_holm"], holm(out["p_ttest"]))
    assert bool(out.set_index("model").loc["a", "significant"])


def test_summary_table_rows():
    frame = _runs(3)
    out = summary_table(frame, metrics=["rmse"])
    assert len(out) == 3
    row = out[out.model == "a"].iloc[0]
    vals = frame[frame.model == "a"]["rmse"]
    assert row["mean"] == pytest.approx(vals.mean()) and row["std"] == pytest.approx(vals.std())
