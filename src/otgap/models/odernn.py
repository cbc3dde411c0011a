"""ODE-RNN (Rubanova et al., 2019): a GRU whose hidden state follows an ODE between observations.

Between ``t_{i-1}`` and ``t_i`` the hidden state evolves under a small learned field
(Linear-Tanh-Linear) over each sample's OWN gap ``t_i - t_{i-1}`` (fixed substeps of per-sample
length, so mixed gaps in a batch need no loop over samples; the reference implementation pairs
steps with the wrong gap, which this avoids). ``method`` other than "euler"/"rk4" runs that
torchdiffeq method through ``odeint`` with time rescaling (dh/ds = gap * f(h), s in [0, 1]). The prediction at ``t_i`` decodes the evolved state
as a change from the last consumed value: ``y_hat_i = x_last + W h(t_i)``. Where ``t_i`` is
observed a GRU cell updates the hidden state with the observation; inside the context window
where it is not, the update is masked out and the state simply keeps evolving (Rubanova's masked
update).

``feedback`` chooses what happens where nothing is observed (``otgap.models.sequence``):
``"forecast"`` (default, the project's one rollout protocol): inside the forecast region the model's
own prediction is fed to the GRU (and becomes the reference state) at every grid time;
``"none"`` (LABELLED ABLATION, Rubanova's masked mode used open-loop, which their code does not
support for ODE-RNN): the hidden state evolves with nothing to correct it; ``"unobserved"``: the
prediction is fed back at every unobserved point, the context's too.
Forced system: the drive's phase (cos, sin) at the consumed time enters the GRU's input, and the
phase at each (sub)step's own time enters the hidden field (dh/dt = f(h, cos, sin)), so the drive
reaches the dynamics between observations as it reaches the Neural ODE's field.
"""

from __future__ import annotations

import torch
from torch import nn

from otgap.models.sequence import (
    SequenceModel,
    any_true,
    carry_forward,
    check_feedback,
    feeds_back,
    rnn_cell,
)


class ODERNN(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        field_hidden: int | None = None,
        method: str = "rk4",
        n_sub: int = 1,
        rtol: float = 1e-5,
        atol: float = 1e-6,
        feedback: str = "forecast",
        drive_omega: float = 0.0,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim, drive_omega)
        if method not in ("euler", "rk4"):
            from torchdiffeq._impl.odeint import SOLVERS

            if method not in SOLVERS:
                raise ValueError(
                    f"method must be 'euler', 'rk4' (fixed-step loops) or a torchdiffeq method "
                    f"{sorted(SOLVERS)}, got '{method}'"
                )
        if n_sub < 1:
            raise ValueError(f"n_sub must be >= 1, got {n_sub}")
        self.hidden = hidden
        self.method = method
        self.n_sub = n_sub
        self.feedback = check_feedback(feedback)
        self.rtol, self.atol = float(rtol), float(atol)
        fh = field_hidden or hidden
        self.field = nn.Sequential(
            nn.Linear(hidden + self.n_drive, fh), nn.Tanh(), nn.Linear(fh, hidden)
        )
        self.gru = nn.GRUCell(state_dim + self.n_drive, hidden)
        self.head = nn.Linear(hidden, state_dim)

    def hidden_field(self, h: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """dh/dt at hidden states ``h`` (B, H) and relative times ``s`` (B,); the drive's phase at
        ``s`` enters on a forced system (``s`` unused, and may be None, without a drive)."""
        if self.n_drive:
            return self.field(torch.cat([h, self.drive(s).to(h.dtype)], -1))
        return self.field(h)

    def evolve(
        self, h: torch.Tensor, gap: torch.Tensor, t0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Integrate the hidden state over per-sample times ``gap`` (B,) from relative times
        ``t0`` (B,; needed on a forced system, where the drive enters the field)."""
        if self.n_drive and t0 is None:
            raise ValueError("a forced ODE-RNN integrates from a start time: pass t0")
        if self.method not in ("euler", "rk4"):
            from torchdiffeq import odeint

            g = gap.unsqueeze(-1)
            grid = torch.tensor([0.0, 1.0], dtype=h.dtype, device=h.device)

            def rhs(s, z):
                when = None if t0 is None else t0 + s * gap
                return g * self.hidden_field(z, when)

            return odeint(rhs, h, grid, method=self.method, rtol=self.rtol, atol=self.atol)[-1]
        dt = gap / self.n_sub
        step = dt.unsqueeze(-1)
        f = self.hidden_field
        for k in range(self.n_sub):
            s0 = None if t0 is None else t0 + k * dt
            if self.method == "euler":
                h = h + step * f(h, s0)
            else:
                mid = None if s0 is None else s0 + 0.5 * dt
                end = None if s0 is None else s0 + dt
                k1 = f(h, s0)
                k2 = f(h + 0.5 * step * k1, mid)
                k3 = f(h + 0.5 * step * k2, mid)
                k4 = f(h + step * k3, end)
                h = h + step / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return h

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        B, T, _ = y.shape
        x_last = y[:, 0]
        x0 = torch.cat([x_last, self.drive(t[:, 0])], -1)
        h = rnn_cell(self.gru, x0, y.new_zeros(B, self.hidden))
        out = [x_last]
        for i in range(1, T):
            h = self.evolve(h, t[:, i] - t[:, i - 1], t[:, i - 1])
            pred = x_last + self.head(h)
            out.append(pred)
            use = obs[:, i] | feeds_back(self, self.feedback, i, obs[:, i])
            if any_true(use):
                x_in = carry_forward(obs[:, i], y[:, i], pred)
                h_in = rnn_cell(self.gru, torch.cat([x_in, self.drive(t[:, i])], -1), h)
                h = carry_forward(use, h_in, h)
                x_last = carry_forward(use, x_in, x_last)
        return torch.stack(out, dim=1)
