"""Sequence models (A.1): the interface contract, checked for every registry entry, plus
model-specific checks against hand computations and independent integrators."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from otgap.models.odernn import ODERNN
from otgap.models.sequence import SEQUENCE_MODELS, build_sequence_model
from otgap.models.tlstm import TLSTM, elapsed_time_weight, tlstm_decay
from otgap.train.sequence import load_sequence_model, save_sequence_model

NAMES = sorted(SEQUENCE_MODELS)
HIDDEN = 8


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_sequence_model(name, hidden=HIDDEN)


def batch(B: int = 4, T: int = 9, seed: int = 0, p_obs: float = 0.6):
    """Irregular times (per-sample gaps), random states and a mask with column 0 observed."""
    g = torch.Generator().manual_seed(seed)
    gaps = 0.2 + 0.6 * torch.rand(B, T - 1, generator=g, dtype=torch.float64)
    t = torch.cat([torch.zeros(B, 1, dtype=torch.float64), gaps.cumsum(1)], dim=1) + 3.0
    y = torch.randn(B, T, 2, generator=g)
    obs = torch.rand(B, T, generator=g) < p_obs
    obs[:, 0] = True
    return t, y, obs


# ---- the interface, for every registry entry ------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_first_column(name):
    t, y, obs = batch()
    out = make(name)(t, y, obs)
    assert out.shape == y.shape
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 0], y[:, 0])


@pytest.mark.parametrize("name", NAMES)
def test_unobserved_values_are_never_read(name):
    t, y, obs = batch()
    model = make(name)
    ref = model(t, y, obs)
    y_nan = y.clone()
    y_nan[~obs] = float("nan")
    y_big = y.clone()
    y_big[~obs] = 1e6
    for y_alt in (y_nan, y_big):
        out = model(t, y_alt, obs)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, ref, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_strict_causality(name):
    """Changing y at positions >= i changes nothing in y_hat[:, :i+1]."""
    t, y, obs = batch(T=10, p_obs=0.8)
    model = make(name)
    ref = model(t, y, obs)
    for i in (1, 4, 8):
        y_alt = y.clone()
        y_alt[:, i:] += 5.0 * torch.randn_like(y_alt[:, i:])
        out = model(t, y_alt, obs)
        torch.testing.assert_close(out[:, : i + 1], ref[:, : i + 1], rtol=0, atol=0)
        # also changing which later points are observed must not matter
        obs_alt = obs.clone()
        obs_alt[:, i:] = ~obs_alt[:, i:]
        out = model(t, y, obs_alt)
        torch.testing.assert_close(out[:, : i + 1], ref[:, : i + 1], rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_future_times_do_not_leak(name):
    t, y, obs = batch(T=8)
    model = make(name)
    ref = model(t, y, obs)
    t_alt = t.clone()
    t_alt[:, 5:] += 3.0  # later points move later; the first six predictions must not change
    out = model(t_alt, y, obs)
    torch.testing.assert_close(out[:, :5], ref[:, :5], rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_independent_and_use_their_own_gaps(name):
    """A batch of samples with different gaps equals each sample run alone."""
    t, y, obs = batch(B=3, T=8, seed=3)
    model = make(name)
    together = model(t, y, obs)
    for b in range(3):
        alone = model(t[b : b + 1], y[b : b + 1], obs[b : b + 1])
        torch.testing.assert_close(together[b : b + 1], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    t, y, obs = batch(B=6, T=10, p_obs=0.5)
    model = make(name)
    if not list(model.parameters()):
        pytest.skip(f"{name} has no parameters")
    model(t, y, obs)[:, 1:].pow(2).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NAMES)
def test_determinism_with_a_seed(name):
    t, y, obs = batch()
    torch.testing.assert_close(make(name, 7)(t, y, obs), make(name, 7)(t, y, obs), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name, tmp_path):
    t, y, obs = batch()
    a = make(name, 1)
    if isinstance(getattr(a, "x_mean", None), torch.Tensor):
        a.x_mean.fill_(0.3)  # buffers travel too
    b = make(name, 2)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(t, y, obs), b(t, y, obs), rtol=0, atol=0)
    path = tmp_path / "model.pt"
    save_sequence_model(path, name, {"hidden": HIDDEN}, a)
    loaded_name, c = load_sequence_model(path)
    assert loaded_name == name
    torch.testing.assert_close(a(t, y, obs), c(t, y, obs), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_float64_inputs_and_large_absolute_times(name):
    t, y, obs = batch()
    model = make(name)
    ref = model(t, y.double(), obs)
    shifted = model(t + 1.0e4, y.double(), obs)  # gaps, not absolute times, drive the models
    torch.testing.assert_close(ref, shifted, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_give_clear_errors(name):
    model = make(name)
    t, y, obs = batch(T=6)
    with pytest.raises(ValueError, match="y must have shape"):
        model(t, torch.zeros(4, 6, 3), obs)
    with pytest.raises(ValueError, match="obs must have shape"):
        model(t, y, obs[:, :-1])
    with pytest.raises(ValueError, match="t must have shape"):
        model(t[0], y, obs)
    with pytest.raises(TypeError, match="obs must be a bool"):
        model(t, y, obs.float())
    bad = obs.clone()
    bad[1, 0] = False
    with pytest.raises(ValueError, match="obs\\[:, 0\\] must be True"):
        model(t, y, bad)
    with pytest.raises(ValueError, match="too short"):
        model(t[:, :1], y[:, :1], obs[:, :1])
    t_bad = t.clone()
    t_bad[0, 3] = t_bad[0, 2]
    with pytest.raises(ValueError, match="strictly increasing"):
        model(t_bad, y, obs)


def test_unknown_model_name_and_keyword():
    with pytest.raises(KeyError, match="unknown sequence model 'nope'.*known: .*neural_ode"):
        build_sequence_model("nope")
    with pytest.raises(TypeError, match="cannot build sequence model 'tlstm'"):
        build_sequence_model("tlstm", hidden=4, n_sub=3)


def test_baseline_is_marked_and_trainable_models_are_not():
    for name in NAMES:
        model = make(name)
        assert model.is_baseline == (sum(p.numel() for p in model.parameters()) == 0), name
    assert SEQUENCE_MODELS["last_observation"].is_baseline
    assert SEQUENCE_MODELS["neural_ode_oracle"].fit_target == "vector_field"
    assert SEQUENCE_MODELS["neural_ode"].fit_target == "one_step"


# ---- model-specific checks -----------------------------------------------------------------


def test_last_observation_by_hand():
    t = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    y = torch.tensor([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0]]])
    obs = torch.tensor([[True, False, True, False, False]])
    out = build_sequence_model("last_observation")(t, y, obs)
    expected = torch.tensor([[[1.0, 10.0], [1.0, 10.0], [1.0, 10.0], [3.0, 30.0], [3.0, 30.0]]])
    torch.testing.assert_close(out, expected)


def test_tlstm_decay_on_hand_computed_numbers():
    c_prev = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    W = torch.tensor([[0.2, 0.0], [0.1, -0.3]], dtype=torch.float64)
    b = torch.tensor([0.1, 0.0], dtype=torch.float64)
    dt = torch.tensor([1.0], dtype=torch.float64)
    # by hand: W c + b = [0.2*0.5 + 0.1, 0.1*0.5 + 0.3] = [0.2, 0.35]
    cs = [math.tanh(0.2), math.tanh(0.35)]
    g = 1.0 / math.log(math.e + 1.0)
    expected = [0.5 - cs[0] + cs[0] * g, -1.0 - cs[1] + cs[1] * g]
    out = tlstm_decay(c_prev, dt, W, b)
    np.testing.assert_allclose(out.numpy()[0], expected, rtol=1e-12)
    # the same values written out: tanh(0.2) = 0.19738, tanh(0.35) = 0.33638, g(1) = 0.76146
    np.testing.assert_allclose(out.numpy()[0], [0.45292, -1.08024], atol=2e-5)
    # no elapsed time: g(0) = 1/log(e) = 1, the memory is unchanged
    out0 = tlstm_decay(c_prev, torch.zeros(1, dtype=torch.float64), W, b)
    torch.testing.assert_close(out0, c_prev)
    assert float(elapsed_time_weight(torch.tensor(math.e**2 - math.e))) == pytest.approx(0.5)


def test_tlstm_decay_uses_each_samples_elapsed_time():
    torch.manual_seed(0)
    model = TLSTM(hidden=4)
    c = torch.randn(2, 4, dtype=torch.float32)
    dt = torch.tensor([0.1, 2.0])
    both = tlstm_decay(c, dt, model.cell.decomp.weight, model.cell.decomp.bias)
    for b in range(2):
        one = tlstm_decay(
            c[b : b + 1], dt[b : b + 1], model.cell.decomp.weight, model.cell.decomp.bias
        )
        torch.testing.assert_close(both[b : b + 1], one)


def test_odernn_evolves_over_each_samples_own_gap():
    """Recompute the first two predictions by hand from the model's parts, per sample."""
    torch.manual_seed(0)
    model = ODERNN(hidden=6, method="rk4", n_sub=2)
    t = torch.tensor([[0.0, 0.3, 1.5], [0.0, 0.9, 1.0]])
    y = torch.randn(2, 3, 2)
    obs = torch.ones(2, 3, dtype=torch.bool)
    out = model(t, y, obs)
    for b in range(2):
        h = model.gru(y[b : b + 1, 0], torch.zeros(1, 6))
        h = model.evolve(h, t[b : b + 1, 1] - t[b : b + 1, 0])
        torch.testing.assert_close(out[b, 1], (y[b, 0] + model.head(h)[0]))
        h = model.gru(y[b : b + 1, 1], h)
        h = model.evolve(h, t[b : b + 1, 2] - t[b : b + 1, 1])
        torch.testing.assert_close(out[b, 2], (y[b, 1] + model.head(h)[0]))
    # the evolution itself matches an independent integrator of the learned hidden field
    h0 = torch.randn(1, 6, dtype=torch.float64)
    m64 = model.double()
    fine = ODERNN(hidden=6, method="rk4", n_sub=64).double()
    fine.load_state_dict(m64.state_dict())
    got = fine.evolve(h0, torch.tensor([0.8], dtype=torch.float64))[0].detach().numpy()

    def rhs(_, h):
        with torch.no_grad():
            return m64.field(torch.as_tensor(h)[None])[0].numpy()

    ref = solve_ivp(rhs, (0.0, 0.8), h0[0].numpy(), method="DOP853", rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(got, ref.y[:, -1], rtol=1e-7, atol=1e-9)


def test_neural_ode_matches_an_independent_solver_on_its_learned_field():
    """With many substeps, the prediction is the exact flow of the learned field from the last
    observed state over the whole unobserved stretch (scipy DOP853 as reference)."""
    torch.manual_seed(0)
    model = build_sequence_model("neural_ode", hidden=16, n_sub=64).double()
    t = torch.tensor([[0.0, 0.4, 1.1, 1.5], [0.0, 0.7, 0.8, 2.0]], dtype=torch.float64)
    y = torch.tensor(np.random.default_rng(0).normal(size=(2, 4, 2)))
    obs = torch.tensor([[True, False, False, True], [True, True, False, False]])
    with torch.no_grad():
        out = model(t, y, obs).numpy()

    def rhs(_, z):
        with torch.no_grad():
            return model.field(torch.as_tensor(z)[None])[0].numpy()

    for b, last in ((0, 0), (1, 1)):
        for i in range(last + 1, 4):
            if i == 3 and b == 0:
                continue  # observed at 3 after the stretch; checked below
            sol = solve_ivp(
                rhs,
                (float(t[b, last]), float(t[b, i])),
                y[b, last].numpy(),
                method="DOP853",
                rtol=1e-11,
                atol=1e-12,
            )
            np.testing.assert_allclose(out[b, i], sol.y[:, -1], rtol=1e-7, atol=1e-9)
    # the observed point 3 of sample 0 is predicted from the state at t=0 over the gap 1.5
    sol = solve_ivp(rhs, (0.0, 1.5), y[0, 0].numpy(), method="DOP853", rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(out[0, 3], sol.y[:, -1], rtol=1e-7, atol=1e-9)


def test_grud_prepare_and_imputation():
    torch.manual_seed(0)
    model = build_sequence_model("grud", hidden=4)
    t, y, obs = batch(B=5, T=7)
    model.prepare(t, y, obs)
    torch.testing.assert_close(model.x_mean, y[obs].mean(0))
    # with no decay at all (gamma_x = 1) the input for a missing point is the last observation:
    # the prediction after an unobserved point then equals that with the point observed at the
    # last value.
    with torch.no_grad():
        model.decay_x_weight.zero_()
        model.decay_x_bias.fill_(-10.0)  # relu(-10) = 0 -> gamma_x = 1
        model.decay_h.weight.zero_()
        model.decay_h.bias.fill_(-10.0)  # gamma_h = 1
    t1 = torch.tensor([[0.0, 0.5, 1.0, 1.5]])
    y1 = torch.tensor([[[1.0, 2.0], [5.0, 6.0], [9.0, 9.0], [0.0, 0.0]]])
    miss = torch.tensor([[True, False, True, True]])
    pred = model(t1, y1, miss)
    assert torch.isfinite(pred).all()
    # input at the missing step is x_last = y[0] whatever y[1] holds
    y2 = y1.clone()
    y2[0, 1] = torch.tensor([-3.0, 4.0])
    torch.testing.assert_close(model(t1, y2, miss), pred)


def test_grud_step_matches_a_hand_written_transcription_of_che_et_al():
    """Each output of GRU-D against the equations of Che et al. (2018) written out here with
    explicit gate formulas (no nn.GRUCell): input decay to the empirical mean over a gap, hidden
    decay by the time since the last observation (which restarts at an observation), the mask
    and the gap to the predicted time as GRU inputs, and y_hat = x_hat + W h."""
    torch.manual_seed(3)
    model = build_sequence_model("grud", hidden=3).double()
    with torch.no_grad():  # decays that neither vanish nor saturate at these gaps
        model.decay_x_weight.copy_(torch.tensor([0.8, 0.3], dtype=torch.float64))
        model.decay_x_bias.copy_(torch.tensor([-0.1, 0.05], dtype=torch.float64))
        model.decay_h.weight.uniform_(-0.5, 1.0)
        model.decay_h.bias.uniform_(-0.2, 0.2)
        model.x_mean.copy_(torch.tensor([0.25, -0.5], dtype=torch.float64))
    # two unobserved context points in a row (delta accumulates), then a forecast region from
    # point 5 in which the model consumes its own predictions as observations
    t = torch.tensor([[10.0, 10.5, 11.2, 12.0, 12.3, 12.9, 13.4]], dtype=torch.float64)
    y = torch.tensor(
        [[[1.0, -1.0], [7.0, 7.0], [-7.0, 3.0], [0.4, 0.9], [-0.3, 0.2], [0.0, 0.0], [0.0, 0.0]]],
        dtype=torch.float64,
    )
    obs = torch.tensor([[True, False, False, True, True, False, False]])
    ff = 5
    out = model(t, y, obs, forecast_from=ff)[0]

    W_ih, W_hh = model.gru.weight_ih.detach(), model.gru.weight_hh.detach()
    b_ih, b_hh = model.gru.bias_ih.detach(), model.gru.bias_hh.detach()
    Wd, bd = model.decay_h.weight.detach(), model.decay_h.bias.detach()
    wx, bx = model.decay_x_weight.detach(), model.decay_x_bias.detach()
    Wo, bo = model.head.weight.detach(), model.head.bias.detach()
    H = 3

    def gru(x, h):  # r, z, n in PyTorch's row order of the stacked weights
        gi, gh = W_ih @ x + b_ih, W_hh @ h + b_hh
        r = 1 / (1 + torch.exp(-(gi[:H] + gh[:H])))
        z = 1 / (1 + torch.exp(-(gi[H : 2 * H] + gh[H : 2 * H])))
        n = torch.tanh(gi[2 * H :] + r * gh[2 * H :])
        return (1 - z) * n + z * h

    mean = torch.tensor([0.25, -0.5], dtype=torch.float64)
    h = torch.zeros(H, dtype=torch.float64)
    x_last, t_last = y[0, 0], 10.0
    expected = [y[0, 0]]
    for j in range(6):  # step j consumes time point j and predicts point j + 1
        delta = t[0, j].item() - t_last  # time since the last observation before point j
        seen = bool(obs[0, j]) or j >= ff
        if seen:
            x_hat, m = (y[0, j] if obs[0, j] else expected[j]), 1.0
        else:
            g = torch.exp(-torch.clamp(wx * delta + bx, min=0.0))
            x_hat, m = g * x_last + (1 - g) * mean, 0.0
        gamma_h = torch.exp(
            -torch.clamp(Wd @ torch.full((2,), delta, dtype=torch.float64) + bd, min=0.0)
        )
        gap = (t[0, j + 1] - t[0, j]).item()
        inp = torch.cat([x_hat, torch.tensor([m, m, gap], dtype=torch.float64)])
        h = gru(inp, gamma_h * h)
        expected.append(x_hat + Wo @ h + bo)
        if seen:
            x_last, t_last = x_hat, t[0, j].item()
    torch.testing.assert_close(out, torch.stack(expected), rtol=1e-12, atol=1e-12)
    # With the head zeroed the prediction is x_hat itself: at the unobserved point 1 (0.5 after
    # the observation (1, -1) at 10.0) gamma_x = (exp(-(0.8 * 0.5 - 0.1)), exp(-(0.3 * 0.5 + 0.05)))
    # = (exp(-0.3), exp(-0.2)), pulling x_last towards the mean (0.25, -0.5).
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    x_hat = model(t, y, obs, forecast_from=ff)[0, 2]
    e3, e2 = math.exp(-0.3), math.exp(-0.2)
    hand = [e3 * 1.0 + (1 - e3) * 0.25, e2 * -1.0 + (1 - e2) * -0.5]
    torch.testing.assert_close(x_hat, torch.tensor(hand, dtype=torch.float64), rtol=0, atol=1e-14)


def test_odernn_autoregressive_variant_is_causal_and_feeds_back():
    t, y, obs = batch(T=9, p_obs=0.6)
    torch.manual_seed(0)
    masked = ODERNN(hidden=6, feedback="none")
    ar = ODERNN(hidden=6, feedback="unobserved")
    ar.load_state_dict(masked.state_dict())
    out_ar = ar(t, y, obs)
    y_alt = y.clone()
    y_alt[~obs] = float("nan")
    y_alt[:, 6:] += 3.0
    torch.testing.assert_close(ar(t, y_alt, obs)[:, :7], out_ar[:, :7], rtol=0, atol=0)
    # identical while everything is observed, different after the first unobserved point
    full = torch.ones_like(obs)
    torch.testing.assert_close(ar(t, y, full), masked(t, y, full))
    assert not torch.allclose(out_ar, masked(t, y, obs))


# ---- the one rollout protocol, T-LSTM's decay, forcing, solvers -------------------------------


def _decay_arguments(model, t, y, obs, forecast_from=None):
    """Every elapsed-time tensor the T-LSTM cell receives, in call order."""
    seen = []
    hook = model.cell.register_forward_pre_hook(lambda mod, args: seen.append(args[1].clone()))
    try:
        model(t, y, obs, forecast_from=forecast_from)
    finally:
        hook.remove()
    return seen


def test_tlstm_decay_argument_is_the_time_since_the_last_observation():
    """Under a sparse mask, the decay at each update sees t_i - t_(previous observation), computed
    here independently from the times and the mask; inside the forecast region it sees grid gaps."""
    t, y, obs = batch(B=3, T=12, seed=5, p_obs=0.4)
    model = make("tlstm")
    assert model.mode == "observations"
    T, ff = t.shape[1], 9
    obs[:, ff:] = False
    seen = _decay_arguments(model, t, y, obs, forecast_from=ff)
    tn, on = t.numpy(), obs.numpy()
    expected_calls = [0] + [i for i in range(1, T) if on[:, i].any() or i >= ff]
    assert len(seen) == len(expected_calls)
    np.testing.assert_allclose(seen[0].numpy(), 0.0)
    for call, i in zip(seen[1:], expected_calls[1:], strict=True):
        for b in range(3):
            if i >= ff:  # fed back at every grid time: the previous grid point was consumed
                prev = max(j for j in range(i) if on[b, j] or j >= ff)
            elif on[b, i]:
                prev = max(j for j in range(i) if on[b, j])
            else:
                continue  # this sample does not update here (its result is discarded)
            assert call[b].item() == pytest.approx(tn[b, i] - tn[b, prev], rel=1e-6)
    # the dense-grid variant (labelled ablation) only ever sees grid gaps
    torch.manual_seed(0)
    dense = TLSTM(hidden=HIDDEN, mode="dense")
    seen = _decay_arguments(dense, t, y, obs)
    gaps = np.diff(tn, axis=1)
    for i, call in enumerate(seen[1:], start=2):
        np.testing.assert_allclose(call.numpy(), gaps[:, i - 2], rtol=1e-6)


def test_tlstm_skips_unobserved_points_outside_the_forecast_region():
    """Between observations the prediction depends on the elapsed time only, not on how many
    unobserved grid points lie in between (no updates there)."""
    torch.manual_seed(0)
    model = TLSTM(hidden=HIDDEN)
    t = torch.tensor([[0.0, 0.5, 1.3, 2.0]], dtype=torch.float64)
    y = torch.randn(1, 4, 2)
    obs = torch.tensor([[True, True, False, False]])
    full = model(t, y, obs)
    short = model(t[:, [0, 1, 3]], y[:, [0, 1, 3]], obs[:, [0, 1, 3]])
    torch.testing.assert_close(full[:, 3], short[:, 2])


@pytest.mark.parametrize("name", ["tlstm", "lstm_dt", "odernn", "grud"])
def test_forecast_region_feeds_back_own_predictions(name):
    """Inside the forecast region each recurrent model consumes its prediction as an observation:
    observing its own prediction there changes nothing."""
    t, y, obs = batch(B=2, T=10, seed=2, p_obs=1.0)
    model = make(name)
    ff = 6
    obs_f = obs.clone()
    obs_f[:, ff:] = False
    with torch.no_grad():
        out = model(t, y, obs_f, forecast_from=ff)
        # observe the model's own prediction at column ff: identical predictions follow
        y2 = y.clone()
        y2[:, ff] = out[:, ff]
        obs2 = obs_f.clone()
        obs2[:, ff] = True
        out2 = model(t, y2, obs2, forecast_from=ff + 1)
    torch.testing.assert_close(out2, out, rtol=1e-5, atol=1e-6)


def test_forecast_from_rejects_observed_points():
    t, y, obs = batch(T=8, p_obs=1.0)
    with pytest.raises(ValueError, match="forecast region"):
        make("tlstm")(t, y, obs, forecast_from=4)


def _true_forced_field(omega=0.8, amp=0.3, current=0.3, a=0.7, b=0.8, tau=12.5):
    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()  # a float64 buffer keeps the model's dtype float64
            self.register_buffer("dtype_marker", torch.zeros((), dtype=torch.float64))

        def forward(self, z, drive=None):
            v, w = z[..., 0], z[..., 1]
            dv = v - v**3 / 3 - w + current + amp * drive[..., 0]
            return torch.stack([dv, (v + a - b * w) / tau], dim=-1)

    return Field()


def test_phase_aware_neural_ode_integrates_the_forced_field_at_absolute_times():
    """With its MLP replaced by the true forced FitzHugh-Nagumo field f(y, cos, sin), the Neural
    ODE's predictions match scipy's DOP853 on the non-autonomous system at absolute times (the
    drive's phase is evaluated at every RK4 stage)."""
    from otgap.data.fhn import vector_field

    model = build_sequence_model("neural_ode", hidden=4, n_sub=40, drive_omega=0.8).double()
    model.field = _true_forced_field()
    t = torch.tensor(
        [[203.0, 203.9, 205.1, 205.6], [517.3, 517.5, 518.6, 519.9]], dtype=torch.float64
    )
    y = torch.tensor([[[1.0, 0.5]] * 4, [[-1.2, 0.1]] * 4], dtype=torch.float64)
    obs = torch.tensor([[True, False, False, False], [True, False, False, False]])
    with torch.no_grad():
        out = model(t, y, obs).numpy()
    for b in range(2):
        sol = solve_ivp(
            lambda s, z: vector_field(s, z, system="fhn_forced"),
            (float(t[b, 0]), float(t[b, -1])),
            y[b, 0].numpy(),
            method="DOP853",
            t_eval=t[b].numpy(),
            rtol=1e-11,
            atol=1e-12,
        )
        np.testing.assert_allclose(out[b], sol.y.T, atol=2e-7)
    # the drive enters the oracle's regressed field at absolute times as well
    field = model.vector_field(t[:, 0], y[:, 0])
    ref = vector_field(t[:, 0], y[:, 0], system="fhn_forced")
    torch.testing.assert_close(field, ref)


def test_torchdiffeq_solver_agrees_with_the_rk4_loop():
    """dopri5 through odeint (time rescaling for per-sample gaps, with and without the adjoint)
    against the fixed-step RK4 loop with many substeps, on the same field and gaps."""
    torch.manual_seed(0)
    rk4 = build_sequence_model("neural_ode", hidden=16, n_sub=64).double()
    t, y, obs = batch(B=3, T=7, seed=4, p_obs=0.5)
    y = y.double()
    ref = rk4(t, y, obs)
    for adjoint in (False, True):
        dp = build_sequence_model(
            "neural_ode", hidden=16, solver="dopri5", rtol=1e-9, atol=1e-10, adjoint=adjoint
        ).double()
        dp.load_state_dict(rk4.state_dict())
        out = dp(t, y, obs)
        torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-8)
        g_ref = torch.autograd.grad(
            ref[:, 1:].pow(2).sum(), rk4.field.net[0].weight, retain_graph=True
        )[0]
        g = torch.autograd.grad(out[:, 1:].pow(2).sum(), dp.field.net[0].weight)[0]
        torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="torchdiffeq method"):
        build_sequence_model("neural_ode", hidden=4, solver="nope")
    # ODE-RNN's hidden evolution through odeint agrees with its fine RK4 loop likewise
    fine = ODERNN(hidden=6, method="rk4", n_sub=64).double()
    dp = ODERNN(hidden=6, method="dopri5", rtol=1e-10, atol=1e-11).double()
    dp.load_state_dict(fine.state_dict())
    h0 = torch.randn(3, 6, dtype=torch.float64)
    gaps = torch.tensor([0.2, 0.7, 1.3], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(dp.evolve(h0, gaps), fine.evolve(h0, gaps), rtol=1e-8, atol=1e-9)
