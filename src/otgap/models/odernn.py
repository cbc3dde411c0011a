"""ODE-RNN (Rubanova et al., 2019): a GRU whose hidden state follows an ODE between observations.

Between ``t_{i-1}`` and ``t_i`` the hidden state evolves under a small learned field
(Linear-Tanh-Linear) over each sample's OWN gap ``t_i - t_{i-1}`` (fixed substeps of per-sample
length, so mixed gaps in a batch need no loop over samples; the reference implementation pairs
steps with the wrong gap, which this avoids). The prediction at ``t_i`` decodes the evolved state
as a change from the last observed value: ``y_hat_i = x_last + W h(t_i)``. Where ``t_i`` is observed
a GRU cell updates the hidden state with the observation; where it is not, the update is masked
out and the state simply keeps evolving, which is how the model extrapolates.

``autoregressive=True`` instead feeds the model's own prediction to the GRU where nothing is
observed (and uses it as the new reference state), the protocol of the paper's code for long
rollouts; the default is Rubanova's masked update.
"""

from __future__ import annotations

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, carry_forward


class ODERNN(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        field_hidden: int | None = None,
        method: str = "rk4",
        n_sub: int = 1,
        autoregressive: bool = False,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim)
        if method not in ("euler", "rk4"):
            raise ValueError(f"method must be 'euler' or 'rk4', got '{method}'")
        if n_sub < 1:
            raise ValueError(f"n_sub must be >= 1, got {n_sub}")
        self.hidden = hidden
        self.method = method
        self.n_sub = n_sub
        self.autoregressive = autoregressive
        fh = field_hidden or hidden
        self.field = nn.Sequential(nn.Linear(hidden, fh), nn.Tanh(), nn.Linear(fh, hidden))
        self.gru = nn.GRUCell(state_dim, hidden)
        self.head = nn.Linear(hidden, state_dim)

    def evolve(self, h: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """Integrate the hidden state over per-sample times ``gap`` (B,)."""
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
        h = self.gru(x_last, y.new_zeros(B, self.hidden))
        out = [x_last]
        for i in range(1, T):
            h = self.evolve(h, t[:, i] - t[:, i - 1])
            pred = x_last + self.head(h)
            out.append(pred)
            if self.autoregressive:
                x_last = carry_forward(obs[:, i], y[:, i], pred)
                h = self.gru(x_last, h)
            else:
                h = carry_forward(obs[:, i], self.gru(y[:, i], h), h)
                x_last = carry_forward(obs[:, i], y[:, i], x_last)
        return torch.stack(out, dim=1)
