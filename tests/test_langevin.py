"""Langevin optimizer (the Landau posts): a hand-computed step with a fixed generator, the source's own
optimizer transcribed, the (4 - 2 damping)/lr limit on a quadratic, reproducible noise on resume."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from otgap.models.landau import LandauNet, landau_loss
from otgap.optim import OPTIMIZERS
from otgap.optim.langevin import Langevin
from tests.test_landau import SeedExperimentalNet


# ---- literal transcription of the Landau post's optimizer (the independent reference) -----------------
class SeedLangevinLandauOptimizer:
    def __init__(self, model, learning_rate=0.001, damping=0.1, temperature=0.8):
        self.model = model
        self.lr = learning_rate
        self.damping = damping
        self.temperature = temperature
        self.velocities = [torch.zeros_like(p.data) for p in model.parameters()]

    def step(self, phi, target):
        d_loss = self.model.llayer2.d_loss(phi, target)
        for _i, (param, velocity) in enumerate(
            zip(self.model.parameters(), self.velocities, strict=True)
        ):
            force = -torch.autograd.grad(d_loss, param, create_graph=True)[0]
            velocity.mul_(1 - self.damping).add_(force * self.lr)
            noise_scale = torch.sqrt(torch.tensor(2 * self.damping * self.temperature * self.lr))
            velocity.add_(torch.randn_like(velocity) * noise_scale)
            param.data.add_(velocity)
        return d_loss.item()


def test_hand_computed_steps_with_fixed_generator():
    lr, damping, temp, seed = 0.05, 0.3, 0.2, 7
    a = np.array([2.0, -1.0, 0.5])
    p0 = np.array([1.0, 0.5, -2.0])
    q0 = np.array([[0.3, -0.1], [0.2, 0.4]])
    p = torch.nn.Parameter(torch.tensor(p0))
    q = torch.nn.Parameter(torch.tensor(q0))
    opt = Langevin([p, q], lr=lr, damping=damping, temperature=temp, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    ref_p, ref_q = p0.copy(), q0.copy()
    vp, vq = np.zeros(3), np.zeros((2, 2))
    scale = math.sqrt(2 * damping * lr * temp)
    for _ in range(3):
        opt.zero_grad()
        (0.5 * (torch.tensor(a) * p**2).sum() + (q**3).sum()).backward()
        opt.step()
        # parameters in order, each drawing its noise from the same generator
        vp = (1 - damping) * vp - lr * (a * ref_p)
        vp = vp + scale * torch.randn(3, generator=gen, dtype=torch.float64).numpy()
        ref_p = ref_p + vp
        vq = (1 - damping) * vq - lr * (3 * ref_q**2)
        vq = vq + scale * torch.randn((2, 2), generator=gen, dtype=torch.float64).numpy()
        ref_q = ref_q + vq
    np.testing.assert_allclose(p.detach().numpy(), ref_p, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(q.detach().numpy(), ref_q, rtol=1e-12, atol=1e-14)


def test_matches_seed_optimizer_at_zero_temperature():
    """One step of the source's own optimizer on the source's net, temperature 0.

    The source's loop adds each velocity through ``param.data`` before it takes the next parameter's
    gradient from the same graph, so the gradients of later parameters whose backward reads a saved
    parameter (beta and t read ``w``; BatchNorm's through the t_dynamic path of the next layer)
    see already-updated values. The stated update (and ``Langevin``) uses one gradient for all.
    The weights ``w``, whose gradients read no updated tensor, must agree exactly.
    """
    torch.manual_seed(4)
    seed_net = SeedExperimentalNet(12, 7, 3, 0.01, arange_dtype=torch.float64).double()
    ours = LandauNet((12,), 3, n_layers=2, hidden=7, beta_init=0.01).double()
    ours.load_state_dict(seed_net.state_dict())
    seed_opt = SeedLangevinLandauOptimizer(seed_net, 0.01, 0.2, 0.0)
    opt = Langevin(ours.parameters(), lr=0.01, damping=0.2, temperature=0.0)
    x = torch.randn(8, 12, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    before = ours.llayer1.w.detach().clone()
    seed_opt.step(seed_net(x), y)
    landau_loss(ours(x), y, 0.0035, 5.0).backward()
    opt.step()
    assert not torch.equal(ours.llayer1.w, before)
    for name in ("llayer1.w", "llayer2.w"):
        torch.testing.assert_close(
            ours.state_dict()[name], seed_net.state_dict()[name], rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize("damping", [0.1, 0.5])
def test_stability_limit_on_a_quadratic(damping):
    lr = 0.1
    limit = OPTIMIZERS["langevin"].threshold(lr, damping=damping, temperature=0.0)
    assert limit == pytest.approx((4 - 2 * damping) / lr)

    def final_size(curvature):
        p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
        opt = OPTIMIZERS["langevin"].build([p], lr, damping=damping, temperature=0.0)
        for _ in range(500):
            opt.zero_grad()
            (0.5 * curvature * p**2).sum().backward()
            opt.step()
        return abs(float(p.detach()))

    assert final_size(0.98 * limit) < 1e-6
    assert final_size(1.02 * limit) > 1e6


def test_state_dict_round_trip_continues_the_noise():
    def fresh(seed):
        p = torch.nn.Parameter(torch.tensor([1.0, -0.5, 2.0]))
        return p, Langevin([p], lr=0.1, damping=0.2, temperature=0.5, seed=seed)

    def steps(p, opt, n):
        for _ in range(n):
            opt.zero_grad()
            p.square().sum().backward()
            opt.step()

    p, opt = fresh(11)
    steps(p, opt, 2)
    state = copy.deepcopy(opt.state_dict())
    q, other = fresh(99)  # a different seed: only the loaded state can make it agree
    with torch.no_grad():
        q.copy_(p)
    other.load_state_dict(state)
    steps(p, opt, 3)
    steps(q, other, 3)
    assert torch.equal(p, q)
    with pytest.raises(ValueError, match="generator"):
        other.load_state_dict({k: v for k, v in state.items() if k != "generator"})


def test_global_seed_makes_runs_reproducible():
    def run():
        torch.manual_seed(5)
        p = torch.nn.Parameter(torch.zeros(4))
        opt = OPTIMIZERS["langevin"].build([p], 0.1, temperature=1.0, damping=0.5)
        p.grad = torch.zeros(4)
        opt.step()
        return p.detach().clone()

    a, b = run(), run()
    assert torch.equal(a, b) and a.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"damping": -0.1}, "damping"),
        ({"damping": 1.5}, "damping"),
        ({"temperature": -1e-3}, "temperature"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Langevin([torch.nn.Parameter(torch.zeros(2))], **kwargs)
