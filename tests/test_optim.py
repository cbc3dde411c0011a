"""Every OPTIMIZERS entry against hand-computed updates and thresholds on a tiny quadratic."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from otgap.optim import OPTIMIZERS, format_lr, parse_lr
from otgap.optim.base import OptimizerSpec

# loss(p) = 0.5 * sum(A * p**2), so grad = A * p
A = np.array([3.0, 0.5, -1.0])
P0 = np.array([1.0, -2.0, 0.25])
LR = 0.1
N_STEPS = 3


def ref_gd(hyper):
    p = P0.copy()
    for _ in range(N_STEPS):
        p = p - LR * (A * p)
    return p


def ref_momentum(hyper):
    beta, p, buf = hyper.get("beta", 0.9), P0.copy(), None
    for _ in range(N_STEPS):
        g = A * p
        buf = g if buf is None else beta * buf + g  # torch's first step sets buf = g
        p = p - LR * buf
    return p


def ref_adam(hyper, decoupled_wd=0.0):
    b1, b2, eps = hyper.get("beta1", 0.9), hyper.get("beta2", 0.999), hyper.get("eps", 1e-8)
    p, m, v = P0.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, N_STEPS + 1):
        g = A * p
        p = p * (1 - LR * decoupled_wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        p = p - LR * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def ref_langevin(hyper):
    damping, p, v = hyper["damping"], P0.copy(), np.zeros(3)
    for _ in range(N_STEPS):  # temperature 0: no noise
        v = (1 - damping) * v - LR * (A * p)
        p = p + v
    return p


def ref_biostatis(hyper, hierarchical=True):
    """The plain-Python reference of tests/test_optim_biostatis.py on this quadratic."""
    from tests.test_optim_biostatis import DEFAULTS, reference_step

    group = {**DEFAULTS, "lr": LR, "params": [P0.tolist()]}
    group["betas"] = (hyper.get("beta1", 0.9), hyper.get("beta2", 0.999))
    group.update({k: v for k, v in hyper.items() if k not in ("beta1", "beta2")})
    states = [{}]
    for _ in range(N_STEPS):
        grads = [[(A * np.array(group["params"][0])).tolist()]]
        reference_step([group], grads, states, hierarchical)
    return np.array(group["params"][0])


# name -> (hyper used, hand-computed parameters after N_STEPS, threshold at LR by hand)
REFERENCES = {
    "gd": ({}, ref_gd, 2 / LR),
    "sgd": ({}, ref_gd, 2 / LR),
    "momentum": ({"beta": 0.5}, ref_momentum, (2 + 2 * 0.5) / LR),
    "adam": ({"beta1": 0.8, "beta2": 0.99}, ref_adam, (2 + 2 * 0.8) / ((1 - 0.8) * LR)),
    "gd_momentum": ({"beta": 0.5}, ref_momentum, (2 + 2 * 0.5) / LR),
    "adam_fb": ({"beta1": 0.8, "beta2": 0.99}, ref_adam, (2 + 2 * 0.8) / ((1 - 0.8) * LR)),
    "adamw": (
        {"beta1": 0.8, "beta2": 0.99, "weight_decay": 0.05},
        lambda h: ref_adam(h, decoupled_wd=0.05),
        (2 + 2 * 0.8) / ((1 - 0.8) * LR),
    ),
    "langevin": ({"damping": 0.3, "temperature": 0.0}, ref_langevin, (4 - 2 * 0.3) / LR),
    "biostatis": (
        {"beta1": 0.8, "weight_decay": 0.05, "flip_threshold": 3.0},
        ref_biostatis,
        (2 + 2 * 0.8) / ((1 - 0.8) * LR),
    ),
    "biostatis_dynamo": (
        {"beta1": 0.8, "weight_decay": 0.05, "homeo_rate": 0.5},
        lambda h: ref_biostatis(h, hierarchical=False),
        (2 + 2 * 0.8) / ((1 - 0.8) * LR),
    ),
}


def reference(name):
    if name not in REFERENCES:
        pytest.fail(f"optimizer '{name}' has no hand-computed reference in tests/test_optim.py")
    return REFERENCES[name]


def run_steps(opt, p, n):
    a = torch.tensor(A)
    for _ in range(n):
        opt.zero_grad()
        (0.5 * (a * p**2).sum()).backward()
        opt.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_entry_is_a_spec(name):
    spec = OPTIMIZERS[name]
    assert issubclass(spec, OptimizerSpec)
    assert isinstance(spec.full_batch, bool) and isinstance(spec.preconditioned, bool)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        spec.build([torch.nn.Parameter(torch.zeros(2))], 0.1, no_such_knob=1)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_steps_match_hand_computation(name):
    hyper, ref, _ = reference(name)
    p = torch.nn.Parameter(torch.tensor(P0))
    run_steps(OPTIMIZERS[name].build([p], LR, **hyper), p, N_STEPS)
    np.testing.assert_allclose(p.detach().numpy(), ref(hyper), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_threshold_matches_hand_computation(name):
    hyper, _, expected = reference(name)
    got = OPTIMIZERS[name].threshold(LR, **hyper)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_default_thresholds():
    assert OPTIMIZERS["gd"].threshold(0.15) == pytest.approx(2 / 0.15)
    assert OPTIMIZERS["momentum"].threshold(0.01) == pytest.approx(3.8 / 0.01)
    assert OPTIMIZERS["adam"].threshold(1e-3) == pytest.approx(38 / 1e-3)
    assert OPTIMIZERS["adamw"].threshold(1e-3) == pytest.approx(38 / 1e-3)
    assert OPTIMIZERS["gd"].full_batch and not OPTIMIZERS["sgd"].full_batch
    assert OPTIMIZERS["adam"].preconditioned and not OPTIMIZERS["momentum"].preconditioned
    assert OPTIMIZERS["gd_momentum"].full_batch and OPTIMIZERS["adam_fb"].full_batch
    assert OPTIMIZERS["adam_fb"].preconditioned and not OPTIMIZERS["gd_momentum"].preconditioned
    assert OPTIMIZERS["gd_momentum"].threshold(0.1) == pytest.approx(3.8 / 0.1)
    assert OPTIMIZERS["adam_fb"].threshold(1e-3) == pytest.approx(38 / 1e-3)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip(name):
    hyper = reference(name)[0]
    p = torch.nn.Parameter(torch.tensor(P0))
    opt = OPTIMIZERS[name].build([p], LR, **hyper)
    run_steps(opt, p, 2)
    state = copy.deepcopy(opt.state_dict())
    q = torch.nn.Parameter(p.detach().clone())
    fresh = OPTIMIZERS[name].build([q], LR, **hyper)
    fresh.load_state_dict(state)
    run_steps(opt, p, 1)
    run_steps(fresh, q, 1)
    assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.15, "0.15"),
        ("1.5e-1", "0.15"),
        (1e-5, "1e-05"),
        (2, "2.0"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_format_lr_round_trips(value, text):
    assert format_lr(value) == text
    assert parse_lr(text) == float(value)


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf")])
def test_format_lr_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        format_lr(bad)


def test_parse_lr_rejects_non_canonical_text():
    with pytest.raises(ValueError, match="'0.15'"):
        parse_lr("0.150")
