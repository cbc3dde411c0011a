"""Time-aware LSTM (T-LSTM, Baytas et al., KDD 2017).

Before each update the previous memory is split into a short-term part, which is discounted by the
elapsed time, and a long-term part, which is kept::

    C_S     = tanh(W_d C_{t-1} + b_d)        short-term memory
    C_S_hat = C_S * g(dt),  g(dt) = 1 / log(e + dt)
    C_T     = C_{t-1} - C_S                  long-term memory
    C*      = C_T + C_S_hat                  adjusted previous memory

followed by the usual gates with ``C_t = f * C* + i * C_tilde`` and ``h_t = o * tanh(C_t)``.

As a forecaster: step ``i`` consumes the state at ``t_{i-1}`` (the observation, or the model's own
prediction where there is none) with the elapsed time ``t_{i-1} - t_{i-2}`` driving the decay, and
also reads the gap ``t_i - t_{i-1}`` to the time it predicts. The output is a change added to the
consumed state: ``y_hat_i = x_{i-1} + W h_i``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, carry_forward


def elapsed_time_weight(dt: torch.Tensor) -> torch.Tensor:
    """g(dt) = 1 / log(e + dt): 1 at dt = 0, decreasing slowly for larger gaps."""
    return 1.0 / torch.log(math.e + dt)


def tlstm_decay(
    c_prev: torch.Tensor, dt: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """The adjusted memory C* = (C - C_S) + C_S * g(dt) for memory ``c_prev`` (B, H), ``dt`` (B,)."""
    c_short = torch.tanh(c_prev @ weight.T + bias)
    return (c_prev - c_short) + c_short * elapsed_time_weight(dt).unsqueeze(-1)


class TLSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.decomp = nn.Linear(hidden, hidden)
        self.gates = nn.Linear(input_size + hidden, 4 * hidden)

    def forward(
        self, x: torch.Tensor, dt: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        c_star = tlstm_decay(c, dt, self.decomp.weight, self.decomp.bias)
        i, f, o, g = self.gates(torch.cat([x, h], dim=-1)).chunk(4, dim=-1)
        c_new = torch.sigmoid(f) * c_star + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return h_new, c_new


class TLSTM(SequenceModel):
    def __init__(self, hidden: int = 128, state_dim: int = 2) -> None:
        super().__init__(state_dim)
        self.cell = TLSTMCell(state_dim + 1, hidden)
        self.head = nn.Linear(hidden, state_dim)

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        B, T, _ = y.shape
        h = y.new_zeros(B, self.cell.hidden)
        c = y.new_zeros(B, self.cell.hidden)
        x = y[:, 0]
        out = [x]
        elapsed = torch.zeros_like(t[:, 0])
        for i in range(1, T):
            gap = t[:, i] - t[:, i - 1]
            h, c = self.cell(torch.cat([x, gap.unsqueeze(-1)], dim=-1), elapsed, (h, c))
            pred = x + self.head(h)
            out.append(pred)
            x = carry_forward(obs[:, i], y[:, i], pred)
            elapsed = gap
        return torch.stack(out, dim=1)
