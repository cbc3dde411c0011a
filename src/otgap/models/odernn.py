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
Forced system: the drive's phase (cos, sin) at the consumed time enters the GRU's input.
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
        self.field = nn.Sequential(nn.Linear(hidden, fh), nn.Tanh(), nn.Linear(fh, hidden))
        self.gru = nn.GRUCell(state_dim + self.n_drive, hidden)
        self.head = nn.Linear(hidden, state_dim)

    def evolve(self, h: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """Integrate the hidden state over per-sample times ``gap`` (B,)."""
        if self.method not in ("euler", "rk4"):
            from torchdiffeq import odeint

            g = gap.unsqueeze(-1)
            grid = torch.tensor([0.0, 1.0], dtype=h.dtype, device=h.device)
            return odeint(lambda s, z: g * self.field(z), h, grid, method=self.method,
                          rtol=self.rtol, atol=self.atol)[-1]
        step = (gap / self.n_sub).unsqueeze(-1)
        f = self.field
        for _ in range(self.n_sub):
            if self.method == "euler":
                h = h + step * f(h)
            else:
                k1 = f(h)
                k2 = f(h + 0.5 * step * k1)
                k3 = f(h + 0.5 * step * k2)
                k4 = f(h + step * k3)
                h = h + step / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return h

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        B, T, _ = y.shape
        x_last = y[:, 0]
        x0 = torch.cat([x_last, self.drive(t[:, 0])], -1)
        h = rnn_cell(self.gru, x0, y.new_zeros(B, self.hidden))
        out = [x_last]
        for i in range(1, T):
            h = self.evolve(h, t[:, i] - t[:, i - 1])
            pred = x_last + self.head(h)
            out.append(pred)
            use = obs[:, i] | feeds_back(self, self.feedback, i, obs[:, i])
            if any_true(use):
                x_in = carry_forward(obs[:, i], y[:, i], pred)
                h_in = rnn_cell(self.gru, torch.cat([x_in, self.drive(t[:, i])], -1), h)
                h = carry_forward(use, h_in, h)
                x_last = carry_forward(use, x_in, x_last)
        return torch.stack(out, dim=1)
