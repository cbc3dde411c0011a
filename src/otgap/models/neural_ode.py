"""Neural ODE forecaster: a learned vector field integrated over each sample's own gaps.

The field is the paper's MLP (2-128-128-64-2 with Tanh at ``hidden=128``; in general
D-H-H-H/2-D). A prediction at ``t_i`` is the flow of the learned field from the last observed
state before ``i`` over the time ``t_i - t_last``. The time loop realises it step by step: the
carried state is reset to the observation wherever one exists and otherwise continues from the
model's own prediction, so integrating ``t_{i-1} -> t_i`` from the carried state equals
integrating from the last observation (flow composition) while keeping the step size bounded by
the gap between neighbouring time points rather than by the whole unobserved stretch. (This is
already the project's one rollout protocol: inside a forecast region the model continues from its
own prediction.)

Forced system (``drive_omega`` = Omega > 0): the field is f(y, cos Omega t, sin Omega t), with the
drive's phase evaluated at the time of every RK4 stage (absolute time; see
``otgap.models.sequence``), so the model can represent the non-autonomous field exactly.

Solvers. ``solver="rk4"`` (default): each gap is split into ``n_sub`` fixed RK4 substeps whose
length ``h_b = gap_b / n_sub`` is a per-sample tensor, so a batch with different gaps needs no loop
over samples; ``max_step`` (if set) raises the number of substeps so that no substep in the batch is
longer than it. Any other value is a torchdiffeq method run through ``odeint`` (e.g. "dopri5" with
``rtol``/``atol``, ``adjoint`` for the adjoint method): torchdiffeq takes one time grid per batch, so
per-sample gaps are handled by time rescaling, integrating s in [0, 1] with
dz/ds = gap * f(z, t0 + s * gap).

``NeuralODE`` learns from the observed irregular trajectories. ``OracleNeuralODE`` is the same model
trained by regressing the TRUE vector field at sampled states (the paper's code); that uses
information no forecaster has and is kept as a labelled reference ("oracle").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, carry_forward


class VectorField(nn.Module):
    """MLP field f(y[, drive]): D(+2) -> H -> H -> H/2 -> D with Tanh activations."""

    def __init__(self, state_dim: int = 2, hidden: int = 128, n_drive: int = 0) -> None:
        super().__init__()
        if hidden < 2:
            raise ValueError(f"hidden must be >= 2, got {hidden}")
        self.net = nn.Sequential(
            nn.Linear(state_dim + n_drive, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden // 2),
            nn.Tanh(),
            nn.Linear(hidden // 2, state_dim),
        )

    def forward(self, y: torch.Tensor, drive: torch.Tensor | None = None) -> torch.Tensor:
        if drive is not None and drive.shape[-1]:
            y = torch.cat([y, drive], dim=-1)
        return self.net(y)


def rk4_flow(field, z: torch.Tensor, gap: torch.Tensor, n_steps: int, s0=None) -> torch.Tensor:
    """Integrate dz/dt = field(s, z) over per-sample times ``gap`` (B,) with ``n_steps`` RK4 steps.

    ``field`` takes (time (B,), state (B, D)); ``s0`` (B,) is the start time (0 if None).
    """
    h = gap / n_steps
    s = torch.zeros_like(gap) if s0 is None else s0
    hc = h.unsqueeze(-1)
    for k in range(n_steps):
        sk = s + k * h
        k1 = field(sk, z)
        k2 = field(sk + 0.5 * h, z + 0.5 * hc * k1)
        k3 = field(sk + 0.5 * h, z + 0.5 * hc * k2)
        k4 = field(sk + h, z + hc * k3)
        z = z + hc / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return z


class _Rescaled(nn.Module):
    """dz/ds = gap * f(t0 + s * gap, z) on s in [0, 1] (torchdiffeq's shared grid, per-sample gaps)."""

    def __init__(self, model: NeuralODE) -> None:
        super().__init__()
        self.model = model
        self.gap: torch.Tensor | None = None
        self.s0: torch.Tensor | None = None

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g = self.gap
        return g.unsqueeze(-1) * self.model.vector_field_rel(self.s0 + s * g, z)


class NeuralODE(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        n_sub: int = 4,
        max_step: float | None = None,
        solver: str = "rk4",
        rtol: float = 1e-5,
        atol: float = 1e-6,
        adjoint: bool = False,
        drive_omega: float = 0.0,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim, drive_omega)
        if n_sub < 1:
            raise ValueError(f"n_sub must be >= 1, got {n_sub}")
        if max_step is not None and not max_step > 0:
            raise ValueError(f"max_step must be positive or None, got {max_step}")
        if solver != "rk4":
            from torchdiffeq._impl.odeint import SOLVERS

            if solver not in SOLVERS:
                raise ValueError(f"solver must be 'rk4' or a torchdiffeq method {sorted(SOLVERS)}")
        self.n_sub = n_sub
        self.max_step = max_step
        self.solver = solver
        self.rtol, self.atol, self.adjoint = float(rtol), float(atol), bool(adjoint)
        self.field = VectorField(state_dim, hidden, self.n_drive)

    def vector_field(self, t: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
        """The learned right-hand side at ABSOLUTE times ``t`` (ignored when unforced)."""
        if not self.drive_omega:
            return self.field(y)
        phase = self.drive_omega * t
        return self.field(y, torch.stack([torch.cos(phase), torch.sin(phase)], dim=-1))

    def vector_field_rel(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The field at times ``s`` (B,) relative to the first point of the current call."""
        return self.field(y, self.drive(s) if self.drive_omega else None)

    def _n_steps(self, gap: torch.Tensor) -> int:
        if self.max_step is None:
            return self.n_sub
        return max(self.n_sub, math.ceil(float(gap.max()) / self.max_step))

    def flow(self, z: torch.Tensor, s0: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """The state ``gap`` (B,) after ``z`` at relative times ``s0`` (B,)."""
        if self.solver == "rk4":
            return rk4_flow(self.vector_field_rel, z, gap, self._n_steps(gap), s0)
        from torchdiffeq import odeint, odeint_adjoint

        func = _Rescaled(self)
        func.gap, func.s0 = gap, s0
        grid = torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
        kwargs = {"method": self.solver, "rtol": self.rtol, "atol": self.atol}
        if self.adjoint:
            return odeint_adjoint(func, z, grid, adjoint_params=tuple(self.parameters()), **kwargs)[
                -1
            ]
        return odeint(func, z, grid, **kwargs)[-1]

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        z = y[:, 0]
        out = [z]
        for i in range(1, y.shape[1]):
            gap = t[:, i] - t[:, i - 1]
            pred = self.flow(z, t[:, i - 1], gap)
            out.append(pred)
            z = carry_forward(obs[:, i], y[:, i], pred)
        return torch.stack(out, dim=1)


class OracleNeuralODE(NeuralODE):
    """REFERENCE: the Neural ODE trained by regressing the true vector field (the paper's code)."""

    fit_target = "vector_field"
