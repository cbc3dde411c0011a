"""Landau network (M. B. Duman's posts): forward against a literal transcription of their code, loss
and beta updates against hand computations, the literal vector update's instability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from otgap.models.classifiers import CLASSIFIERS
from otgap.models.landau import (
    RRELU_SLOPE,
    LandauLayer,
    LandauNet,
    allen_cahn_literal_step,
    allen_cahn_step,
    landau_loss,
    per_unit_force,
)


# ---- literal transcription of the second Landau post's code (kept here as the independent reference) --------
# One knob departs from the text: ``arange_dtype`` (the seed: torch.float). A float32 tensor times a
# 0-dim float64 tensor stays float32, so with the source's arange the modulation a * cosh(5 beta) is
# rounded to float32 even in a float64 model; float64 comparisons pass torch.float64 here.
class SeedLandauLayer(nn.Module):
    def __init__(
        self, input_size, output_size, beta_init, alpha=0.0035, gamma=5.0, arange_dtype=torch.float
    ):
        super().__init__()
        self.arange_dtype = arange_dtype
        self.w = nn.Parameter(torch.randn(output_size, input_size))
        nn.init.xavier_normal_(self.w)
        self.beta = nn.Parameter(torch.tensor(beta_init).float())
        self.alpha = alpha
        self.gamma = gamma
        self.t = nn.Parameter(torch.tensor([1.0]))

    def forward(self, x):
        t_dynamic = self.t * torch.sigmoid(torch.mean(x, dim=-1)).unsqueeze(-1)
        w2 = self.w * (
            torch.arange(x.size(-1), dtype=self.arange_dtype, device=x.device)
            * torch.cosh(5 * self.beta)
            + t_dynamic * torch.sinh(5 * self.beta)
        ).unsqueeze(1)
        phi = torch.matmul(w2, x.unsqueeze(-1)).squeeze(-1)
        return phi

    def d_loss(self, phi, target):
        max_abs_phi = torch.max(torch.abs(phi), dim=1, keepdim=True)[0]
        phi_norm = phi / (max_abs_phi)
        phi_x = (torch.roll(phi_norm, -1, dims=0) - torch.roll(phi_norm, 1, dims=0)) / 2.0
        target_one_hot = F.one_hot(target, num_classes=phi.size(1)).float()
        max_abs_target = torch.max(torch.abs(target_one_hot), dim=1, keepdim=True)[0]
        target_norm = target_one_hot / (max_abs_target)
        diff = phi_norm - target_norm
        quadratic_term = self.alpha * (diff) ** 2
        quartic_term = self.gamma * (diff) ** 4
        spatial_term = 0.5 * phi_x**2
        d_loss = quadratic_term - quartic_term + spatial_term
        mean_d_loss = d_loss.mean()
        return torch.abs(mean_d_loss)


class SeedExperimentalNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, beta_init, arange_dtype=torch.float):
        super().__init__()
        self.llayer1 = SeedLandauLayer(
            input_size, hidden_size, beta_init, arange_dtype=arange_dtype
        )
        self.llayer2 = SeedLandauLayer(
            hidden_size, output_size, beta_init, arange_dtype=arange_dtype
        )
        self.bn1 = nn.BatchNorm1d(hidden_size)

    def forward(self, x):
        x = F.rrelu(self.bn1(self.llayer1(x)))
        x = F.rrelu(self.llayer2(x))
        return x


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1e-3, 0.3, -0.2])
def test_forward_matches_literal_seed_forward_float64(beta):
    torch.manual_seed(0)
    seed = SeedLandauLayer(37, 11, beta, arange_dtype=torch.float64).double()
    with torch.no_grad():
        seed.t.fill_(1.7)
    ours = LandauLayer(37, 11, 0.0).double()
    ours.load_state_dict(seed.state_dict())  # the source's tensor names and shapes load as they are
    x = torch.randn(9, 37, dtype=torch.float64)
    expected = seed(x)
    got = ours(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # gradients with respect to every parameter agree too
    g_seed = torch.autograd.grad(expected.square().sum(), list(seed.parameters()))
    g_ours = torch.autograd.grad(got.square().sum(), list(ours.parameters()))
    for a, b in zip(g_ours, g_seed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_forward_matches_verbatim_seed_forward_float32():
    torch.manual_seed(5)
    seed = SeedLandauLayer(784, 156, 0.2)  # the source's code as written, float32, MNIST size
    ours = LandauLayer(784, 156, 0.0)
    ours.load_state_dict(seed.state_dict())
    x = torch.rand(16, 784)
    expected = seed(x).detach()
    got = ours(x).detach()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("train", [True, False])
def test_two_layer_net_matches_seed_net(train):
    torch.manual_seed(1)
    seed = SeedExperimentalNet(20, 13, 4, 0.05, arange_dtype=torch.float64).double()
    ours = LandauNet((1, 4, 5), 4, n_layers=2, hidden=13, beta_init=0.05).double()
    ours.load_state_dict(seed.state_dict())
    seed.train(train)
    ours.train(train)
    x = torch.randn(6, 1, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x), seed(x.flatten(1)), rtol=1e-6, atol=1e-6)


class SeedOneLayerNet(nn.Module):
    """The second Landau post's commented 1-layer line, ``F.rrelu(self.bn1(self.layer1(x)))``, with ``layer1``
    read as a Landau layer to the classes and ``bn1`` a BatchNorm1d over them."""

    def __init__(self, input_size, output_size, beta_init, arange_dtype=torch.float):
        super().__init__()
        self.llayer1 = SeedLandauLayer(
            input_size, output_size, beta_init, arange_dtype=arange_dtype
        )
        self.bn1 = nn.BatchNorm1d(output_size)

    def forward(self, x):
        return F.rrelu(self.bn1(self.llayer1(x)))


@pytest.mark.parametrize("train", [True, False])
def test_one_layer_net_is_landau_batchnorm_rrelu(train):
    """landau1 is Landau -> BatchNorm1d(classes) -> rrelu; a net without the BatchNorm fails."""
    torch.manual_seed(2)
    net = CLASSIFIERS["landau1"]((6,), 3).double()
    seed = SeedOneLayerNet(6, 3, 1e-3, arange_dtype=torch.float64).double()
    with torch.no_grad():  # non-trivial BatchNorm parameters and running statistics
        seed.bn1.weight.uniform_(0.5, 2.0)
        seed.bn1.bias.uniform_(-1.0, 1.0)
        seed.bn1.running_mean.uniform_(-1.0, 1.0)
        seed.bn1.running_var.uniform_(0.5, 2.0)
    net.load_state_dict(seed.state_dict())  # the same tensor names: llayer1.*, bn1.*
    seed.train(train)
    net.train(train)
    x = torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(net(x), seed(x), rtol=1e-12, atol=1e-12)
    # the BatchNorm is there: the layer alone, then rrelu, gives other outputs
    phi = net.llayer1(x)
    without = torch.where(phi >= 0, phi, phi * (11.0 / 48.0))
    assert not torch.allclose(net(x), without)
    assert isinstance(net.bn1, nn.BatchNorm1d) and net.bn1.num_features == 3
    assert RRELU_SLOPE == pytest.approx(11 / 48)


def test_one_layer_ablation_without_batchnorm_is_layer_then_fixed_rrelu():
    torch.manual_seed(2)
    net = CLASSIFIERS["landau1_nobn"]((6,), 3).double()
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())
    seed = SeedLandauLayer(6, 3, 1e-3, arange_dtype=torch.float64).double()
    seed.load_state_dict(net.llayer1.state_dict())
    x = torch.randn(5, 6, dtype=torch.float64)
    phi = seed(x)
    expected = torch.where(phi >= 0, phi, phi * (11.0 / 48.0))  # rrelu slope (1/8 + 1/3) / 2
    torch.testing.assert_close(net(x), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="2-layer net always has its BatchNorm"):
        LandauNet((6,), 3, n_layers=2, batch_norm=False)


def test_registry_entries_and_parameter_counts():
    one = CLASSIFIERS["landau1"]((1, 28, 28), 10)
    nobn = CLASSIFIERS["landau1_nobn"]((1, 28, 28), 10)
    two = CLASSIFIERS["landau2"]((1, 28, 28), 10)
    assert sum(p.numel() for p in one.parameters()) == 784 * 10 + 2 + 2 * 10  # + bn1 affine
    assert sum(p.numel() for p in nobn.parameters()) == 784 * 10 + 2
    assert sum(p.numel() for p in two.parameters()) == 784 * 156 + 2 + 2 * 156 + 156 * 10 + 2
    assert two.llayer1.w.shape == (156, 784) and two.llayer1.beta.shape == ()
    assert two.llayer1.t.shape == (1,)
    assert float(two.llayer1.beta.detach()) == pytest.approx(1e-3)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="n_layers"):
        LandauNet((4,), 2, n_layers=3)
    with pytest.raises(ValueError, match="beta_init"):
        LandauLayer(4, 3, [0.1, 0.2])
    with pytest.raises(ValueError, match="built for inputs"):
        LandauLayer(4, 3, 0.0)(torch.zeros(2, 5))


# ---- loss ----------------------------------------------------------------------------------------
def hand_landau_loss(phi, target, alpha, gamma):
    """Element by element with python floats."""
    n, c = len(phi), len(phi[0])
    norm = [[v / max(abs(u) for u in row) for v in row] for row in phi]
    total = 0.0
    for i in range(n):
        for j in range(c):
            d = norm[i][j] - (1.0 if target[i] == j else 0.0)
            dx = (norm[(i + 1) % n][j] - norm[(i - 1) % n][j]) / 2.0
            total += alpha * d**2 - gamma * d**4 + 0.5 * dx**2
    return abs(total / (n * c))


def test_landau_loss_by_hand_and_against_seed_method():
    phi = [[0.5, -2.0, 1.0], [3.0, 0.1, -0.4], [-1.0, -1.5, 0.25], [0.2, 0.3, -0.6]]
    target = [1, 0, 2, 2]
    phi_t = torch.tensor(phi, dtype=torch.float64)
    y = torch.tensor(target)
    for alpha, gamma in [(0.0095, 6.5), (0.7, 0.01)]:
        got = float(landau_loss(phi_t, y, alpha, gamma))
        assert got == pytest.approx(hand_landau_loss(phi, target, alpha, gamma), rel=1e-12)
    seed = SeedLandauLayer(2, 3, 0.0, alpha=0.0095, gamma=6.5)
    expected = float(seed.d_loss(phi_t.float(), y))
    assert float(landau_loss(phi_t.float(), y)) == pytest.approx(expected, rel=1e-6)


def test_landau_loss_couples_samples():
    phi = torch.tensor([[0.5, -2.0], [3.0, 0.1], [-1.0, 0.4], [0.2, 0.3]], dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 0])
    whole = landau_loss(phi, y, 0.5, 0.1)
    halves = 0.5 * (landau_loss(phi[:2], y[:2], 0.5, 0.1) + landau_loss(phi[2:], y[2:], 0.5, 0.1))
    assert abs(float(whole - halves)) > 1e-3


# ---- beta updates ---------------------------------------------------------------------------------
def test_scalar_update_reduces_to_reaction_term():
    torch.manual_seed(3)
    layer = LandauLayer(5, 3, 0.4)
    phi = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    b, dt = 0.4, 0.05
    layer.update_beta(phi, y, dt=dt, kappa=0.5)
    assert float(layer.beta.detach()) == pytest.approx(b + dt * (b - b**3), rel=1e-6)


def test_net_update_beta_updates_every_layer():
    net = LandauNet((4,), 3, n_layers=2, hidden=5, beta_init=0.2)
    net.update_beta(torch.randn(7, 3), torch.randint(0, 3, (7,)), dt=0.1)
    for layer in (net.llayer1, net.llayer2):
        assert float(layer.beta.detach()) == pytest.approx(0.2 + 0.1 * (0.2 - 0.2**3), rel=1e-6)


def test_standard_allen_cahn_step_term_by_term():
    beta = [0.3, -0.5, 1.2, 0.0, 0.8]
    force = [0.1, -0.2, 0.05, 0.3, -0.1]
    dt = 0.2
    n = len(beta)
    expected = [
        beta[i]
        + dt
        * (
            (beta[(i + 1) % n] - 2 * beta[i] + beta[(i - 1) % n])
            + beta[i]
            - beta[i] ** 3
            + force[i]
        )
        for i in range(n)
    ]
    got = allen_cahn_step(
        torch.tensor(beta, dtype=torch.float64), dt, torch.tensor(force, dtype=torch.float64)
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13)
    with pytest.raises(ValueError, match="dt"):
        allen_cahn_step(torch.tensor(beta), 0.4)


def test_literal_step_term_by_term():
    beta, prev = [0.3, -0.5, 1.2], [0.25, -0.4, 1.0]
    dt, n = 0.1, 3
    expected = [
        beta[i]
        + dt
        * (
            (beta[i] - prev[i]) / dt
            - (beta[(i + 1) % n] - 2 * beta[i] + beta[(i - 1) % n])
            + beta[i]
            - beta[i] ** 3
        )
        for i in range(n)
    ]
    got = allen_cahn_literal_step(
        torch.tensor(beta, dtype=torch.float64), torch.tensor(prev, dtype=torch.float64), dt
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13)


def test_per_unit_force_by_hand():
    phi = [[0.5, -2.0, 1.0], [3.0, 0.1, -0.4]]
    target = [1, 0]
    alpha, gamma, kappa = 0.3, 0.2, 0.7
    norm = [[v / max(abs(u) for u in row) for v in row] for row in phi]
    unit = []
    for j in range(3):
        s = 0.0
        for i in range(2):
            d = norm[i][j] - (1.0 if target[i] == j else 0.0)
            dx = (norm[(i + 1) % 2][j] - norm[(i - 1) % 2][j]) / 2.0
            s += alpha * d**2 - gamma * d**4 + 0.5 * dx**2
        unit.append(s / 2)
    expected = [-kappa * (unit[(j + 1) % 3] - unit[(j - 1) % 3]) / 2 for j in range(3)]
    got = per_unit_force(
        torch.tensor(phi, dtype=torch.float64), torch.tensor(target), kappa, alpha, gamma
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def _perturbation(beta):
    return float((beta - 1.0).abs().max())


def test_literal_vector_update_diverges_on_high_frequency_mode():
    """Around beta = 1 the mode (-1)^i grows like (1 + sqrt(2 dt))^n under the literal update,
    decays like (1 - 6 dt)^n under the standard step, and the constant mode stays bounded."""
    dt, eps, n_units = 1e-3, 1e-4, 8
    mode = torch.tensor([(-1.0) ** i for i in range(n_units)], dtype=torch.float64)
    start = 1.0 + eps * mode
    prev, beta = start.clone(), start.clone()
    for _ in range(400):
        prev, beta = beta, allen_cahn_literal_step(beta, prev, dt)
    grown = _perturbation(beta) if torch.isfinite(beta).all() else math.inf
    assert grown > 1e3 * eps

    standard = start.clone()
    for _ in range(400):
        standard = allen_cahn_step(standard, dt)
    assert _perturbation(standard) < eps * (1 - 6 * dt) ** 400 * 1.01

    flat = 1.0 + eps * torch.ones(n_units, dtype=torch.float64)
    prev, beta = flat.clone(), flat.clone()
    for _ in range(400):
        prev, beta = beta, allen_cahn_literal_step(beta, prev, dt)
    assert _perturbation(beta) < 2 * eps


def test_per_unit_beta_forward_by_explicit_weights():
    torch.manual_seed(6)
    layer = LandauLayer(5, 3, [0.1, -0.2, 0.05]).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    w, beta, t = layer.w.detach(), layer.beta.detach(), float(layer.t.detach())
    expected = torch.zeros(4, 3, dtype=torch.float64)
    for b in range(4):
        t_dyn = t * torch.sigmoid(x[b].mean())
        for j in range(3):
            for i in range(5):
                w2 = w[j, i] * (i * torch.cosh(5 * beta[j]) + t_dyn * torch.sinh(5 * beta[j]))
                expected[b, j] += w2 * x[b, i]
    torch.testing.assert_close(layer(x).detach(), expected, rtol=1e-12, atol=1e-12)
