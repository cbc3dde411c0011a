"""GRU-D (Che et al., 2018): a GRU with learned decay of inputs and hidden state over missing gaps.

With mask ``m`` (1 where observed), ``delta`` the time since the last observation, ``x_last`` the
last observed value and ``x_mean`` the empirical mean of the training observations::

    gamma_x = exp(-max(0, w_x * delta + b_x))          (per variable)
    x_hat   = m x + (1 - m) (gamma_x x_last + (1 - gamma_x) x_mean)
    gamma_h = exp(-max(0, W_h delta + b_h))
    h       = gamma_h * h,   then   h = GRU([x_hat, m, gap], h)

As a forecaster step ``i`` consumes time point ``i-1`` and the gap ``t_i - t_{i-1}`` to the time it
predicts, and outputs ``y_hat_i = x_hat_{i-1} + W h``. Inside the context window unobserved points
are imputed by the decay (its own design). ``feedback="forecast"`` (default, the project's one
rollout protocol): inside the forecast region the model's own prediction at each grid time is
consumed as if observed (m = 1, delta restarts). ``feedback="none"`` (LABELLED ABLATION, GRU-D used
open-loop as designed): nothing is fed back, so over a long horizon the input relaxes to ``x_mean``.
``x_mean`` is a buffer set by ``prepare`` from the training split. Forced system: the drive's phase
(cos, sin) at the consumed time enters the GRU's input.
"""

from __future__ import annotations

import torch
from torch import nn

from otgap.models.sequence import (
    SequenceModel,
    carry_forward,
    check_feedback,
    feeds_back,
    rnn_cell,
)


class GRUD(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        feedback: str = "forecast",
        drive_omega: float = 0.0,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim, drive_omega)
        self.hidden = hidden
        self.feedback = check_feedback(feedback)
        self.decay_x_weight = nn.Parameter(torch.full((state_dim,), 0.1))
        self.decay_x_bias = nn.Parameter(torch.zeros(state_dim))
        self.decay_h = nn.Linear(state_dim, hidden)
        self.gru = nn.GRUCell(2 * state_dim + 1 + self.n_drive, hidden)
        self.head = nn.Linear(hidden, state_dim)
        self.register_buffer("x_mean", torch.zeros(state_dim))

    def prepare(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> None:
        """Set ``x_mean`` to the mean of the observed training values."""
        del t
        values = y[obs]
        if values.numel() == 0:
            raise ValueError("GRU-D.prepare: the training split has no observed values")
        self.x_mean.copy_(values.mean(dim=0).to(self.x_mean.dtype))

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        B, T, D = y.shape
        h = y.new_zeros(B, self.hidden)
        x_last = y[:, 0]
        t_last = t[:, 0]
        out = [y[:, 0]]
        for i in range(1, T):
            j = i - 1
            seen = obs[:, j] | (feeds_back(self, self.feedback, j, obs[:, j]) if j else obs[:, j])
            x_j = carry_forward(obs[:, j], y[:, j], out[j])  # observation or own prediction
            m = seen.unsqueeze(-1).to(y.dtype).expand(B, D)
            delta = (t[:, j] - t_last).unsqueeze(-1).expand(B, D)
            gamma_x = torch.exp(-torch.relu(self.decay_x_weight * delta + self.decay_x_bias))
            imputed = gamma_x * x_last + (1.0 - gamma_x) * self.x_mean
            x_hat = carry_forward(seen, x_j, imputed)
            gamma_h = torch.exp(-torch.relu(self.decay_h(delta)))
            gap = (t[:, i] - t[:, j]).unsqueeze(-1)
            inp = torch.cat([x_hat, m, gap, self.drive(t[:, j])], dim=-1)
            h = rnn_cell(self.gru, inp, gamma_h * h)
            out.append(x_hat + self.head(h))
            x_last = carry_forward(seen, x_j, x_last)
            t_last = torch.where(seen, t[:, j], t_last)
        return torch.stack(out, dim=1)
