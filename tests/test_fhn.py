"""FitzHugh-Nagumo simulation, masks and datasets, checked against scipy's DOP853 and by hand."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from otgap.data.fhn import lyapunov_exponent, simulate, system_params, vector_field
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset, initial_states, stream
from otgap.data.masks import jittered_times, observation_masks


def reference(y0, t, system, params=None):
    """Independent reference: scipy's DOP853 at rtol 1e-12, one trajectory at a time."""
    p = system_params(system, params)

    def rhs(tt, y):
        v, w = y
        return [
            v - v**3 / 3 - w + p["I"] + p["amp"] * np.cos(p["omega"] * tt),
            (v + p["a"] - p["b"] * w) / p["tau"],
        ]

    out = []
    for b in range(len(y0)):
        tb = t if t.ndim == 1 else t[b]
        sol = solve_ivp(
            rhs, (tb[0], tb[-1]), y0[b], method="DOP853", rtol=1e-12, atol=1e-12, t_eval=tb
        )
        out.append(sol.y.T)
    return np.stack(out)


@pytest.mark.parametrize(("system", "horizon"), [("fhn", 1000.0), ("fhn_forced", 250.0)])
def test_simulate_matches_dop853(system, horizon):
    rng = np.random.default_rng(1)
    y0 = rng.uniform(-2, 2, size=(4, 2))
    t = np.linspace(0.0, horizon, 501)
    ours = simulate(y0, t, system=system)
    assert ours.shape == (4, 501, 2) and ours.dtype == np.float64
    assert np.abs(ours - reference(y0, t, system)).max() < 1e-6


def test_simulate_per_sample_times_and_absolute_drive():
    """Per-sample irregular grids starting at different absolute times (the drive sees them)."""
    rng = np.random.default_rng(2)
    y0 = rng.uniform(-2, 2, size=(3, 2))
    t = jittered_times(rng, 3, 60, 0.5, 0.3, t0=np.array([0.0, 3.7, 11.2]))
    ours = simulate(y0, t, system="fhn_forced")
    assert np.abs(ours - reference(y0, t, "fhn_forced")).max() < 1e-6
    # shifting the start time changes the forced trajectory but not the autonomous one
    shifted = simulate(y0[:1], t[:1] + 1.0, system="fhn_forced")
    assert np.abs(shifted - ours[:1]).max() > 1e-2
    a = simulate(y0[:1], t[:1], system="fhn")
    b = simulate(y0[:1], t[:1] + 1.0, system="fhn")
    assert np.abs(a - b).max() < 1e-12


def test_params_override_and_vector_field():
    p = {"I": 0.1, "tau": 5.0}
    y = np.array([[0.3, -0.2]])
    f = vector_field(0.0, y, "fhn", p)
    v, w = 0.3, -0.2
    assert f[0, 0] == pytest.approx(v - v**3 / 3 - w + 0.1)
    assert f[0, 1] == pytest.approx((v + 0.7 - 0.8 * w) / 5.0)
    t = np.linspace(0, 50, 101)
    assert np.abs(simulate(y, t, params=p) - reference(y, t, "fhn", p)).max() < 1e-6


@pytest.mark.parametrize(
    "bad",
    [
        dict(y0=np.zeros((2, 3)), t=np.arange(3.0)),
        dict(y0=np.zeros((2, 2)), t=np.array([0.0, 1.0, 1.0])),
        dict(y0=np.zeros((2, 2)), t=np.zeros((3, 4))),
    ],
)
def test_simulate_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        simulate(bad["y0"], bad["t"])


def test_unknown_system_and_param():
    with pytest.raises(ValueError, match="unknown FitzHugh-Nagumo system"):
        simulate(np.zeros((1, 2)), np.arange(3.0), system="lorenz")
    with pytest.raises(ValueError, match="unknown FitzHugh-Nagumo parameter 'c'"):
        system_params("fhn", {"c": 1.0})


def test_lyapunov_limit_cycle_is_zero_and_forced_is_chaotic():
    assert abs(lyapunov_exponent("fhn")) < 0.005
    lam = lyapunov_exponent("fhn_forced")
    assert 0.02 < lam < 0.06  # docs/sources.md#fitzhugh-nagumo-and-chaos: +0.037 to +0.039


def test_lyapunov_quasi_periodic_drive_is_not_chaotic():
    """A weak drive of the paper's system stays regular: the estimator does not invent chaos."""
    lam = lyapunov_exponent("fhn_forced", {"I": 0.5, "amp": 0.1, "omega": 1.2}, t_total=2000.0)
    assert lam < 0.005


def test_jittered_times_follow_the_paper():
    rng = np.random.default_rng(0)
    t = jittered_times(rng, 200, 50, 0.5, 0.3)
    d = np.diff(t, axis=1)
    assert np.all(d >= 0.2 - 1e-12) and np.all(d <= 0.8 + 1e-12)
    assert abs(d.mean() - 0.5) < 0.01
    t = jittered_times(rng, 100, 50, 0.5, 0.45)
    assert np.diff(t, axis=1).min() >= 0.1 - 1e-12  # the floor
    assert np.allclose(np.diff(jittered_times(rng, 3, 5, 0.5, 0.0), axis=1), 0.5)


@pytest.mark.parametrize("obs_fraction", [1.0, 0.5, 0.3, 0.05])
def test_observation_masks(obs_fraction):
    rng = np.random.default_rng(0)
    obs, target = observation_masks(rng, 50, 21, 31, obs_fraction, 0.2)
    assert not np.any(obs & target)
    assert obs[:, 0].all() and not target[:, 0].any()
    assert not obs[:, 21:].any() and not target[:, 21:].any()
    assert np.all(target.sum(1) == 4)  # round(0.2 * 20)
    expected = max(1, round(obs_fraction * 16)) + 1
    assert np.all(obs.sum(1) == expected)
    # different rows choose different points; the same seed gives the same masks
    assert len({tuple(r) for r in obs}) > 1 or obs_fraction == 1.0
    obs2, target2 = observation_masks(np.random.default_rng(0), 50, 21, 31, obs_fraction, 0.2)
    assert np.array_equal(obs, obs2) and np.array_equal(target, target2)


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1])
def test_obs_fraction_out_of_range(bad):
    with pytest.raises(ValueError, match="obs_fraction"):
        observation_masks(np.random.default_rng(0), 2, 5, 5, bad, 0.2)
    with pytest.raises(ValueError, match="obs_fraction"):
        Condition("c", 0.3, bad)


SPEC = DatasetSpec(
    n_train=20,
    n_val=5,
    n_test=6,
    n_context=12,
    horizon=4,
    rollout_n=3,
    rollout_length=40,
    burn_in=100.0,
)


def test_initial_state_mix():
    spec = DatasetSpec(burn_in=150.0)
    y0, t0 = initial_states(stream(0, "x"), 400, "fhn", spec)
    inside = np.all(np.abs(y0) <= 2.0, axis=1)
    assert inside.mean() > 0.6  # 60% uniform in the box, plus limit-cycle points inside it
    # the limit cycle reaches |v| ~ 2: some on-cycle states sit where the box has few points
    far = simulate(y0, np.array([0.0, 150.0]), system="fhn")[:, -1]
    assert np.all(np.abs(far[:, 0]) < 2.5)
    assert np.all(t0 == 0.0)
    _, t0f = initial_states(stream(0, "x"), 50, "fhn_forced", spec)
    assert np.all(t0f >= 150.0) and len(np.unique(t0f)) == 50


def test_dataset_layout_and_truth():
    d = build_dataset(
        "fhn_forced", Condition("sparse", 0.3, 0.5), 3, SPEC, 0.037, np.array([1.0, 0.5])
    )
    for split, n in (("train", 20), ("val", 5), ("test", 6)):
        assert d[f"{split}_t"].shape == (n, 16)
        assert d[f"{split}_y"].shape == (n, 16, 2)
        assert not np.any(d[f"{split}_obs"] & d[f"{split}_target"])
    # the states are the true solution at the (irregular, absolute) times
    ref = reference(d["test_y"][:, 0], d["test_t"], "fhn_forced")
    assert np.abs(ref - d["test_y"]).max() < 1e-6
    assert d["rollout_y"].shape == (3, 40, 2)
    assert float(d["lyapunov_time"]) == pytest.approx(1 / 0.037)


def test_dataset_reproducible_and_paired_across_conditions():
    a = build_dataset("fhn", Condition("jitter", 0.3, 1.0), 1, SPEC, 0.0, np.ones(2))
    b = build_dataset("fhn", Condition("jitter", 0.3, 1.0), 1, SPEC, 0.0, np.ones(2))
    c = build_dataset("fhn", Condition("sparse", 0.3, 0.5), 1, SPEC, 0.0, np.ones(2))
    other_seed = build_dataset("fhn", Condition("jitter", 0.3, 1.0), 2, SPEC, 0.0, np.ones(2))
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    # same seed: same initial states for every condition; another seed: different ones
    assert np.array_equal(a["train_y"][:, 0], c["train_y"][:, 0])
    assert not np.allclose(a["train_y"][:, 0], other_seed["train_y"][:, 0])
    assert np.isnan(a["lyapunov_time"])
