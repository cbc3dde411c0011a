"""Batch sharpness (otgap.curvature.batch) against dense float64 Hessians and a hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from otgap.curvature import batch_sharpness, batch_sharpness_stats


@pytest.fixture(autouse=True)
def _float64_single_thread():
    old_dtype, old_threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(old_dtype)
    torch.set_num_threads(old_threads)


def _net(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "tanh":
        return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    if kind == "bn":
        net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3))
        with torch.no_grad():
            for _ in range(3):
                net(2.0 * torch.randn(16, 4) + 1.0)
        return net.train()
    return nn.Sequential(nn.Linear(4, 7), nn.ReLU(), nn.Linear(7, 3))


def _batches(loss: str, k: int = 5, n: int = 8):
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(k):
        x = torch.randn(n, 4, generator=g)
        y = (
            torch.randn(n, 3, generator=g)
            if loss == "mse"
            else torch.randint(0, 3, (n,), generator=g)
        )
        out.append((x, y))
    return out


def _dense_quotient(model: nn.Module, loss_fn, x, y) -> float:
    """g^T H g / g^T g from the dense Hessian and gradient (torch.autograd.functional), eval mode."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])
    modes = [(m, m.training) for m in model.modules()]
    model.eval()

    def f(theta):
        params, off = {}, 0
        for name, p in named:
            params[name] = theta[off : off + p.numel()].view(p.shape)
            off += p.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    try:
        H = torch.autograd.functional.hessian(f, flat)
        g = torch.autograd.functional.jacobian(f, flat)
    finally:
        for m, t in modes:
            m.training = t
    return float(g @ H @ g / (g @ g))


@pytest.mark.parametrize("kind", ["tanh", "relu", "bn"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_matches_dense_hessian(kind: str, loss: str) -> None:
    model = _net(kind)
    loss_fn = F.mse_loss if loss == "mse" else F.cross_entropy
    batches = _batches(loss)
    ref = [_dense_quotient(model, loss_fn, x, y) for x, y in batches]
    before = [p.detach().clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    stats = batch_sharpness_stats(model, loss_fn, batches)
    assert stats.n_batches == len(batches)
    for got, want in zip(stats.values, ref, strict=True):
        assert abs(got - want) <= 1e-10 * max(1.0, abs(want))
    mean = sum(ref) / len(ref)
    sd = math.sqrt(sum((r - mean) ** 2 for r in ref) / (len(ref) - 1))
    assert abs(stats.mean - mean) <= 1e-10 * max(1.0, abs(mean))
    assert abs(stats.stderr - sd / math.sqrt(len(ref))) <= 1e-10 * max(1.0, sd)
    assert batch_sharpness(model, loss_fn, iter(batches)) == pytest.approx(mean, abs=1e-10)
    # the model is left as found: parameters, buffers, train flag, no .grad
    assert all(torch.equal(p.detach(), q) for p, q in zip(model.parameters(), before, strict=True))
    assert all(torch.equal(b, c) for b, c in zip(model.buffers(), buffers, strict=True))
    assert model.training and all(p.grad is None for p in model.parameters())


def test_hand_computed_quadratic() -> None:
    """L_B(w) = mean_i (w.x_i - t_i)^2 / 2 at w = (1, 1).

    Batch 1: x = (1, 0), (0, 2), t = 0: H = diag(1/2, 2), g = (1/2, 2), quotient
    (1/8 + 8) / (1/4 + 4) = 65/34. Batch 2: x = (3, 0), t = 1: H = diag(9, 0), g = (6, 0), quotient 9.
    """
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)

    def loss_fn(out, t):
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    batches = [
        (torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0.0, 0.0])),
        (torch.tensor([[3.0, 0.0]]), torch.tensor([1.0])),
    ]
    stats = batch_sharpness_stats(model, loss_fn, batches)
    assert stats.values == pytest.approx((65 / 34, 9.0), abs=1e-12)
    assert stats.mean == pytest.approx((65 / 34 + 9.0) / 2, abs=1e-12)
    assert stats.stderr == pytest.approx(abs(9.0 - 65 / 34) / 2, abs=1e-12)


def test_bad_input_and_zero_gradient() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)

    def loss_fn(out, t):
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    with pytest.raises(ValueError, match="at least one"):
        batch_sharpness(model, loss_fn, [])
    with pytest.raises(ValueError, match="not finite"):
        batch_sharpness(model, loss_fn, [(torch.ones(1, 2), torch.tensor([math.inf]))])
    zero = [(torch.ones(2, 2), torch.zeros(2))]  # w = 0 fits t = 0: g = 0, no direction
    stats = batch_sharpness_stats(model, loss_fn, zero + [(torch.ones(1, 2), torch.ones(1))])
    assert math.isnan(stats.values[0]) and stats.n_batches == 1
    # x = (1, 1): H = x x^T, g parallel to x, so the quotient is |x|^2 = 2
    assert stats.mean == pytest.approx(2.0)
