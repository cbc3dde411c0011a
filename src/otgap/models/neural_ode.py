"""Neural ODE forecaster: a learned autonomous vector field integrated over each sample's own gaps.

The field is the paper's MLP (2-128-128-64-2 with Tanh at ``hidden=128``; in general
D-H-H-H/2-D). A prediction at ``t_i`` is the flow of the learned field from the last observed
state before ``i`` over the time ``t_i - t_last``. The time loop realises it step by step: the
carried state is reset to the observation wherever one exists and otherwise continues from the
model's own prediction, so integrating ``t_{i-1} -> t_i`` from the carried state equals
integrating from the last observation (flow composition) while keeping the step size bounded by
the gap between neighbouring time points rather than by the whole unobserved stretch.

Each gap is split into ``n_sub`` fixed RK4 substeps whose length ``h_b = gap_b / n_sub`` is a
per-sample tensor, so a batch with different gaps needs no loop over samples. ``max_step`` (if
set) raises the number of substeps so that no substep in the batch is longer than it.

``NeuralODE`` learns from the observed irregular trajectories (one-step-ahead loss at observed
points). ``OracleNeuralODE`` is the same model trained the way the paper's code trained it, by
regressing the TRUE vector field at sampled states: that uses information no forecaster has and
is kept only as a labelled ablation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, carry_forward


class VectorField(nn.Module):
    """MLP field f(y): D -> H -> H -> H/2 -> D with Tanh activations."""

    def __init__(self, state_dim: int = 2, hidden: int = 128) -> None:
        super().__init__()
        if hidden < 2:
            raise ValueError(f"hidden must be >= 2, got {hidden}")
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden // 2),
            nn.Tanh(),
            nn.Linear(hidden // 2, state_dim),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


def rk4_flow(field, z: torch.Tensor, gap: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Integrate dz/dt = field(z) over per-sample times ``gap`` (B,) with ``n_steps`` RK4 steps."""
    h = (gap / n_steps).unsqueeze(-1)
    for _ in range(n_steps):
        k1 = field(z)
        k2 = field(z + 0.5 * h * k1)
        k3 = field(z + 0.5 * h * k2)
        k4 = field(z + h * k3)
        z = z + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return z


class NeuralODE(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        n_sub: int = 4,
        max_step: float | None = None,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim)
        if n_sub < 1:
            raise ValueError(f"n_sub must be >= 1, got {n_sub}")
        if max_step is not None and not max_step > 0:
            raise ValueError(f"max_step must be positive or None, got {max_step}")
        self.n_sub = n_sub
        self.max_step = max_step
        self.field = VectorField(state_dim, hidden)

    def vector_field(self, t: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
        """The learned right-hand side (autonomous: ``t`` is ignored)."""
        del t
        return self.field(y)

    def _n_steps(self, gap: torch.Tensor) -> int:
        if self.max_step is None:
            return self.n_sub
        return max(self.n_sub, math.ceil(float(gap.max()) / self.max_step))

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        z = y[:, 0]
        out = [z]
        for i in range(1, y.shape[1]):
            gap = t[:, i] - t[:, i - 1]
            pred = rk4_flow(self.field, z, gap, self._n_steps(gap))
            out.append(pred)
            z = carry_forward(obs[:, i], y[:, i], pred)
        return torch.stack(out, dim=1)


class OracleNeuralODE(NeuralODE):
    """ABLATION: the Neural ODE trained by regressing the true vector field (the paper's shortcut)."""

    fit_target = "vector_field"
