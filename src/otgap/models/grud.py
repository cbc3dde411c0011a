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
    any_true,
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
        n = T - 1  # step j = 0 .. T-2 consumes time point j and predicts point j + 1
        # Which consumed points count as seen: observations, plus the model's own predictions
        # where it feeds them back (the forecast region, or every unobserved point).
        fed = [torch.zeros_like(obs[:, 0])]  # point 0 is always an observation
        fed += [feeds_back(self, self.feedback, j, obs[:, j]) for j in range(1, n)]
        fed = torch.stack(fed, dim=1)
        seen = obs[:, :n] | fed
        # Everything but the fed-back predictions is known before the loop, so the decays and the
        # imputed inputs are computed for all steps at once: the last seen point before j (point 0
        # for j = 0, where delta = 0), its time and, where it is an observation, its value. An
        # unseen point never follows a fed-back one (those lie in the forecast region, where every
        # point is seen), so the value imputed at an unseen point is always an observation's.
        idx = torch.arange(n, device=y.device).expand(B, n)
        last_incl = torch.cummax(torch.where(seen, idx, torch.zeros_like(idx)), dim=1).values
        last = torch.cat([torch.zeros_like(last_incl[:, :1]), last_incl[:, :-1]], dim=1)
        delta = (t[:, :n] - torch.gather(t, 1, last)).unsqueeze(-1).expand(B, n, D)
        x_last = torch.gather(y, 1, last.unsqueeze(-1).expand(B, n, D))
        gamma_x = torch.exp(-torch.relu(self.decay_x_weight * delta + self.decay_x_bias))
        imputed = gamma_x * x_last + (1.0 - gamma_x) * self.x_mean
        x_given = torch.where(obs[:, :n].unsqueeze(-1), y[:, :n], imputed)
        gamma_h = torch.exp(-torch.relu(self.decay_h(delta)))
        m = seen.unsqueeze(-1).to(y.dtype).expand(B, n, D)
        gap = (t[:, 1:] - t[:, :n]).unsqueeze(-1)
        drive = self.drive(t[:, :n].transpose(0, 1)).transpose(0, 1)  # (B, n, 2 or 0)
        rest = torch.cat([m, gap, drive], dim=-1)
        any_fed = any_true(fed)  # True under vmap
        h = y.new_zeros(B, self.hidden)
        out = [y[:, 0]]
        for j in range(n):
            x_hat = x_given[:, j]
            if any_fed:  # the model's own prediction, consumed as if observed
                x_hat = carry_forward(fed[:, j], out[j], x_hat)
            h = rnn_cell(self.gru, torch.cat([x_hat, rest[:, j]], dim=-1), gamma_h[:, j] * h)
            out.append(x_hat + self.head(h))
        return torch.stack(out, dim=1)
