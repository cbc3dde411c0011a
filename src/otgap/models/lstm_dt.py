"""The paper's "time-aware LSTM": a plain two-layer LSTM whose input is the state and the gap.

Step ``i`` reads ``[x_{i-1}, t_i - t_{i-1}]`` where ``x_{i-1}`` is the observation at ``t_{i-1}``
or, where there is none, the model's own prediction (autoregressive rollout, as in the paper's
code), and outputs a change added to it: ``y_hat_i = x_{i-1} + W h_i``. Not to be confused with
Baytas's T-LSTM cell (``otgap.models.tlstm``).
"""

from __future__ import annotations

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, carry_forward


class LSTMdt(SequenceModel):
    def __init__(self, hidden: int = 128, num_layers: int = 2, state_dim: int = 2) -> None:
        super().__init__(state_dim)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.hidden = hidden
        sizes = [state_dim + 1] + [hidden] * (num_layers - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(n_in, hidden) for n_in in sizes)
        self.head = nn.Linear(hidden, state_dim)

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        B, T, _ = y.shape
        states = [(y.new_zeros(B, self.hidden), y.new_zeros(B, self.hidden)) for _ in self.cells]
        x = y[:, 0]
        out = [x]
        for i in range(1, T):
            gap = (t[:, i] - t[:, i - 1]).unsqueeze(-1)
            inp = torch.cat([x, gap], dim=-1)
            for k, cell in enumerate(self.cells):
                states[k] = cell(inp, states[k])
                inp = states[k][0]
            pred = x + self.head(inp)
            out.append(pred)
            x = carry_forward(obs[:, i], y[:, i], pred)
        return torch.stack(out, dim=1)
