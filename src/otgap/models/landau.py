"""The Landau network (M. B. Duman's two blog posts, 2024): layer, 1/2-layer nets, loss, beta update.

What the posts specify, and how it is built here (docs/sources.md#the-landau-network-and-the-langevin-optimizer):

- **Layer.** ``W2 = W * (cosh(5 beta) a + t_dyn sinh(5 beta))`` with ``a = arange(in_features)``
  and ``t_dyn = t * sigmoid(mean(x))`` per sample; ``phi = W2 x``. The source materialises ``W2`` per
  sample, a ``(batch, out, in)`` tensor. Because the modulation factors by input column and by
  sample, ``W2 x = cosh(5 beta) W (a * x) + t_dyn sinh(5 beta) W x``: two matrix products, no
  per-sample weights (:class:`LandauLayer`; ``benchmarks/landau_forward.py`` measures the gain).
  Parameter names and shapes are the source's (``w`` (out, in), ``beta`` scalar, ``t`` (1,)), so a
  checkpoint of the source's network loads.
- **Nets.** ``landau2``: Landau(in, 156) -> BatchNorm -> rrelu -> Landau(156, classes) -> rrelu, as
  coded in the second post (``llayer1``, ``bn1``, ``llayer2``). ``F.rrelu`` is called with its default
  ``training=False``, i.e. a fixed negative slope (1/8 + 1/3)/2 = 11/48, not random slopes.
  ``landau1``: Landau(in, classes) -> BatchNorm1d(classes) -> rrelu. The second post never codes its
  1-layer net; this is an interpretation of two things it does show: the commented 1-layer line
  in its ``forward`` (``# x = F.rrelu(self.bn1(self.layer1(x)))``, under "rrelu stable while
  model 1 layer"; ``layer1`` is never defined there, so the layer is read as the Landau layer
  straight to the classes and ``bn1`` as a BatchNorm over its outputs) and its figure captions
  "1 Layer Experimental NN with Mish activation and batch norm" (the activation, Mish there, is
  kept as the code's rrelu). ``landau1_nobn`` (Landau -> rrelu) is the ablation without the
  BatchNorm: with the posts' Langevin settings it collapses to one class on digits (the
  BatchNorm centres the outputs that the heavy-ball memory of damping 1e-3 otherwise drifts).
- **Loss.** :func:`landau_loss`: ``|mean(alpha d^2 - gamma d^4 + 0.5 phi_x^2)|`` with
  ``d = phi / max|phi| - onehot / max|onehot|`` (max per sample) and ``phi_x`` the centred
  difference of the normalised output *along the batch axis* (``torch.roll`` on dim 0, as coded).
  It couples samples (the roll, and the absolute value of the mean), so it is not a per-sample
  average: a sum over chunks is not the loss of the whole batch.
- **Beta update (Allen-Cahn).** The specification is
  ``beta <- beta + dt (beta_t - beta_xx + beta - beta^3 + force)`` with
  ``beta_t = (beta - beta_prev)/dt``, ``beta_xx`` the periodic second difference and
  ``force = -kappa (L_{i+1} - L_{i-1})/2``. As coded, ``beta`` is a scalar and ``beta_prev`` is a
  copy of the current ``beta``: the time derivative, the Laplacian and the force all vanish, and
  the update is ``beta <- beta + dt (beta - beta^3)`` (:meth:`LandauLayer.update_beta`). For a
  per-unit beta the literal update (:func:`allen_cahn_literal_step`) is
  ``beta_{n+1} - 2 beta_n + beta_{n-1} = dt (-beta_xx + beta - beta^3 + force)``: second order in
  time without damping, with an anti-diffusive ``-beta_xx``, so high-frequency modes grow. The
  usable option is the standard Allen-Cahn step (:func:`allen_cahn_step`),
  ``beta <- beta + dt (beta_xx + beta - beta^3 + force)``, explicit Euler, stable for
  ``dt <= 1/3`` (the periodic second difference has eigenvalues in [-4, 0]; the reaction's
  linearisation at beta = +-1 is -2; 1 - 6 dt >= -1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from otgap.losses.base import Loss

#: the source's settings (the second post's table; docs/sources.md#the-landau-network-and-the-langevin-optimizer)
SEED_ALPHA = 0.0095
SEED_GAMMA = 6.5
SEED_BETA_INIT = 1e-3
SEED_HIDDEN = 156
#: F.rrelu's default bounds, used with training=False: the fixed slope (lower + upper) / 2
RRELU_SLOPE = (1.0 / 8.0 + 1.0 / 3.0) / 2.0


def rrelu_fixed(x: torch.Tensor) -> torch.Tensor:
    """``F.rrelu`` as the source calls it (``training=False``): leaky ReLU with slope 11/48.

    Written as ``leaky_relu`` (same values; the tests compare with ``F.rrelu``) because
    ``torch.func.vmap``, which the loss-landscape stage maps over parameter vectors, has no rule
    for ``rrelu``.
    """
    return F.leaky_relu(x, RRELU_SLOPE)


class LandauLayer(nn.Module):
    """The Landau network's LandauLayer, computed with two matrix products instead of per-sample weights.

    ``alpha`` and ``gamma`` are the loss coefficients the source keeps on its layer
    (:meth:`d_loss`); they do not enter the forward pass. ``beta_init`` may be a number (the
    source's scalar beta) or a sequence of ``output_size`` numbers (one beta per output unit, for
    :func:`allen_cahn_step`).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        beta_init: float | Sequence[float],
        alpha: float = 0.0035,
        gamma: float = 5.0,
    ) -> None:
        super().__init__()
        if input_size < 1 or output_size < 1:
            raise ValueError(
                f"LandauLayer: sizes must be positive, got {input_size} -> {output_size}"
            )
        self.w = nn.Parameter(torch.randn(output_size, input_size))
        nn.init.xavier_normal_(self.w)
        beta = torch.tensor(beta_init).float()
        if beta.ndim > 1 or (beta.ndim == 1 and beta.numel() != output_size):
            raise ValueError(
                f"LandauLayer: beta_init must be a number or {output_size} numbers (one per "
                f"output unit), got shape {tuple(beta.shape)}"
            )
        self.beta = nn.Parameter(beta)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.t = nn.Parameter(torch.tensor([1.0]))
        self.register_buffer("a", torch.arange(input_size, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.w.shape[1]:
            raise ValueError(
                f"LandauLayer built for inputs (batch, {self.w.shape[1]}), got {tuple(x.shape)}"
            )
        t_dynamic = self.t * torch.sigmoid(x.mean(dim=-1, keepdim=True))  # (batch, 1)
        scaled = F.linear(x * self.a.to(x.dtype), self.w)  # W (a * x)
        plain = F.linear(x, self.w)  # W x
        return torch.cosh(5 * self.beta) * scaled + t_dynamic * torch.sinh(5 * self.beta) * plain

    def d_loss(self, phi: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The source's loss method: :func:`landau_loss` with this layer's alpha and gamma."""
        return landau_loss(phi, target, self.alpha, self.gamma)

    @torch.no_grad()
    def update_beta(
        self, phi: torch.Tensor, target: torch.Tensor, dt: float, kappa: float = 0.01
    ) -> None:
        """The source's ``update_beta``, term by term as coded.

        The loss is a scalar, so its centred difference (the force) is zero; ``beta`` is a scalar,
        so its periodic Laplacian is zero; the previous beta is a copy of the current one, so the
        time derivative is zero. What is left is ``beta <- beta + dt (beta - beta^3)``.
        """
        if not dt > 0:
            raise ValueError(f"update_beta: dt must be positive, got {dt}")
        d_loss = self.d_loss(phi, target).detach()
        d_loss_x = (torch.roll(d_loss, -1) - torch.roll(d_loss, 1)) / 2.0
        force = -kappa * d_loss_x
        beta = self.beta
        beta_xx = torch.roll(beta, -1) - 2 * beta + torch.roll(beta, 1)
        beta_t = (beta - beta.clone()) / dt
        beta.add_(dt * (beta_t - beta_xx + beta - beta**3 + force))


class LandauNet(nn.Module):
    """1- or 2-layer Landau network on flattened inputs (``n_layers`` 1 or 2; see module doc)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        n_layers: int = 2,
        hidden: int = SEED_HIDDEN,
        beta_init: float = SEED_BETA_INIT,
        alpha: float = SEED_ALPHA,
        gamma: float = SEED_GAMMA,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if not input_shape or min(input_shape) < 1:
            raise ValueError(
                f"LandauNet: input shape must be non-empty and positive, got {input_shape}"
            )
        if n_classes < 2:
            raise ValueError(f"LandauNet: need at least 2 classes, got {n_classes}")
        if n_layers not in (1, 2):
            raise ValueError(f"LandauNet: n_layers must be 1 or 2, got {n_layers}")
        if int(hidden) < 1:
            raise ValueError(f"LandauNet: hidden must be positive, got {hidden}")
        if n_layers == 2 and not batch_norm:
            raise ValueError(
                "LandauNet: the 2-layer net always has its BatchNorm (as the source codes it)"
            )
        self.input_shape = input_shape
        self.n_layers = n_layers
        self.batch_norm = bool(batch_norm)
        n_in = math.prod(input_shape)
        if n_layers == 1:
            self.llayer1 = LandauLayer(n_in, n_classes, beta_init, alpha, gamma)
            if self.batch_norm:
                self.bn1 = nn.BatchNorm1d(n_classes)
        else:
            self.llayer1 = LandauLayer(n_in, int(hidden), beta_init, alpha, gamma)
            self.bn1 = nn.BatchNorm1d(int(hidden))
            self.llayer2 = LandauLayer(int(hidden), n_classes, beta_init, alpha, gamma)

    @property
    def landau_layers(self) -> list[LandauLayer]:
        return [m for m in self.modules() if isinstance(m, LandauLayer)]

    @property
    def output_layer(self) -> LandauLayer:
        return self.landau_layers[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"LandauNet built for inputs {self.input_shape}, got {tuple(x.shape[1:])}"
            )
        x = x.flatten(1)
        if self.n_layers == 1:
            phi = self.llayer1(x)
            return rrelu_fixed(self.bn1(phi) if self.batch_norm else phi)
        x = rrelu_fixed(self.bn1(self.llayer1(x)))
        return rrelu_fixed(self.llayer2(x))

    @torch.no_grad()
    def update_beta(
        self, phi: torch.Tensor, target: torch.Tensor, dt: float, kappa: float = 0.01
    ) -> None:
        """Every layer's as-coded beta update (the scalar reduction, see the module docstring)."""
        for layer in self.landau_layers:
            layer.update_beta(phi, target, dt, kappa)


class LandauNet1(LandauNet):
    """``landau1``: Landau(in, classes) -> BatchNorm1d(classes) -> rrelu.

    The interpretation of the second post's commented 1-layer line ``rrelu(bn1(layer1(x)))`` and its
    "1 Layer ... with batch norm" captions (module docstring).
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, **hyper) -> None:
        super().__init__(input_shape, n_classes, n_layers=1, batch_norm=True, **hyper)


class LandauNet1NoBN(LandauNet):
    """``landau1_nobn``: the ablation of ``landau1`` without its BatchNorm (Landau -> rrelu)."""

    def __init__(self, input_shape: Sequence[int], n_classes: int, **hyper) -> None:
        super().__init__(input_shape, n_classes, n_layers=1, batch_norm=False, **hyper)


class LandauNet2(LandauNet):
    """``landau2``: Landau -> BatchNorm -> rrelu -> Landau -> rrelu (the second post, hidden 156)."""

    def __init__(self, input_shape: Sequence[int], n_classes: int, **hyper) -> None:
        super().__init__(input_shape, n_classes, n_layers=2, **hyper)


# ---- loss ------------------------------------------------------------------------------------
def landau_density(
    phi: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float
) -> torch.Tensor:
    """The loss density per (sample, unit): ``alpha d^2 - gamma d^4 + 0.5 phi_x^2``."""
    if phi.ndim != 2 or target.shape != phi.shape[:1]:
        raise ValueError(
            f"landau_loss: phi must be (batch, classes) and target (batch,), got "
            f"{tuple(phi.shape)} and {tuple(target.shape)}"
        )
    phi_norm = phi / phi.abs().amax(dim=1, keepdim=True)
    phi_x = (torch.roll(phi_norm, -1, dims=0) - torch.roll(phi_norm, 1, dims=0)) / 2.0
    onehot = F.one_hot(target, num_classes=phi.shape[1]).to(phi.dtype)
    target_norm = onehot / onehot.abs().amax(dim=1, keepdim=True)
    diff = phi_norm - target_norm
    return alpha * diff**2 - gamma * diff**4 + 0.5 * phi_x**2


def landau_loss(
    phi: torch.Tensor,
    target: torch.Tensor,
    alpha: float = SEED_ALPHA,
    gamma: float = SEED_GAMMA,
) -> torch.Tensor:
    """``|mean(alpha d^2 - gamma d^4 + 0.5 phi_x^2)|`` (the Landau network's loss; see the module docstring).

    Not separable over samples: ``phi_x`` rolls along the batch and the absolute value is taken
    of the batch mean, so it must be evaluated on the whole batch at once.
    """
    return landau_density(phi, target, alpha, gamma).mean().abs()


# ---- beta update (Allen-Cahn) ----------------------------------------------------------------
def periodic_laplacian(beta: torch.Tensor) -> torch.Tensor:
    """``beta_{i+1} - 2 beta_i + beta_{i-1}`` with periodic boundary (zero for a scalar)."""
    return torch.roll(beta, -1) - 2 * beta + torch.roll(beta, 1)


def per_unit_force(
    phi: torch.Tensor,
    target: torch.Tensor,
    kappa: float,
    alpha: float = SEED_ALPHA,
    gamma: float = SEED_GAMMA,
) -> torch.Tensor:
    """``-kappa (L_{i+1} - L_{i-1}) / 2`` over output units, ``L_i`` the unit's batch-mean density."""
    per_unit = landau_density(phi.detach(), target, alpha, gamma).mean(dim=0)
    return -kappa * (torch.roll(per_unit, -1) - torch.roll(per_unit, 1)) / 2.0


def allen_cahn_literal_step(
    beta: torch.Tensor, beta_prev: torch.Tensor, dt: float, force: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """The specification taken literally for a vector beta (unstable: see the module docstring)."""
    beta_t = (beta - beta_prev) / dt
    return beta + dt * (beta_t - periodic_laplacian(beta) + beta - beta**3 + force)


#: explicit Euler's limit for the standard step: 1 + dt * (-4 - 2) >= -1
ALLEN_CAHN_MAX_DT = 1.0 / 3.0


def allen_cahn_step(
    beta: torch.Tensor, dt: float, force: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Standard Allen-Cahn step ``beta + dt (beta_xx + beta - beta^3 + force)``, periodic."""
    if not 0 < dt <= ALLEN_CAHN_MAX_DT:
        raise ValueError(
            f"allen_cahn_step: dt must be in (0, 1/3] (explicit Euler's stability limit), got {dt}"
        )
    return beta + dt * (periodic_laplacian(beta) + beta - beta**3 + force)


def _eos_landau_loss(phi: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return landau_loss(phi, target)


#: ``eos.losses: [landau]`` (registered in ``otgap.losses``) with the source's alpha and gamma; it
#: couples the samples of a batch, so the EoS stage never evaluates it on chunks of samples.
LANDAU_LOSS = Loss("landau", _eos_landau_loss, separable=False)
