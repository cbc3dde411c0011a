"""The paper's "time-aware LSTM": a plain two-layer LSTM whose input is the state and a time gap.

``mode="observations"`` (default, the same choice as T-LSTM): the LSTM steps only at observations,
reading ``[x_j, t_j - t_last]`` (time since the previous observation); the prediction at any time
``t`` is ``x_last + head([h, t - t_last])`` (a small MLP head). Inside a forecast region (see
``otgap.models.sequence``) it feeds back its own prediction at every grid time as an observation.
``mode="dense"`` (the paper's code, a labelled ablation): step ``i`` reads ``[x_{i-1}, t_i - t_{i-1}]``
where ``x_{i-1}`` is the observation at ``t_{i-1}`` or, where there is none, the model's own
prediction, and outputs ``y_hat_i = x_{i-1} + W h_i``. Not to be confused with Baytas's T-LSTM cell
(``otgap.models.tlstm``). Forced system: the drive's phase (cos, sin) enters every input.
"""

from __future__ import annotations

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, carry_forward, rnn_cell
from otgap.models.tlstm import TIME_MODES, predict_at_observations


class StackedLSTM(nn.Module):
    """LSTM cells stacked; state is the flat tuple (h_1, c_1, ..., h_L, c_L)."""

    def __init__(self, input_size: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        self.hidden = hidden
        sizes = [input_size] + [hidden] * (num_layers - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(n_in, hidden) for n_in in sizes)

    def step(self, inp: torch.Tensor, state: tuple) -> tuple:
        new = []
        for k, cell in enumerate(self.cells):
            h, c = rnn_cell(cell, inp, (state[2 * k], state[2 * k + 1]))
            new += [h, c]
            inp = h
        return tuple(new)

    def initial(self, batch: int, like: torch.Tensor) -> tuple:
        return tuple(like.new_zeros(batch, self.hidden) for _ in range(2 * len(self.cells)))

    def update(self, x, elapsed, drive, state):
        return self.step(torch.cat([x, elapsed.unsqueeze(-1), drive], dim=-1), state)

    @staticmethod
    def top(state) -> torch.Tensor:
        return state[-2]


class LSTMdt(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        num_layers: int = 2,
        mode: str = "observations",
        drive_omega: float = 0.0,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim, drive_omega)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if mode not in TIME_MODES:
            raise ValueError(f"mode must be one of {TIME_MODES}, got '{mode}'")
        self.hidden = hidden
        self.mode = mode
        nd = self.n_drive
        self.lstm = StackedLSTM(state_dim + 1 + nd, hidden, num_layers)
        if mode == "dense":
            self.head = nn.Linear(hidden, state_dim)
        else:
            self.head = nn.Sequential(
                nn.Linear(hidden + 1 + nd, hidden), nn.Tanh(), nn.Linear(hidden, state_dim)
            )

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        if self.mode == "observations":
            return predict_at_observations(self, self.lstm, t, y, obs)
        B, T, _ = y.shape
        state = self.lstm.initial(B, y)
        x = y[:, 0]
        out = [x]
        for i in range(1, T):
            gap = t[:, i] - t[:, i - 1]
            state = self.lstm.update(x, gap, self.drive(t[:, i - 1]), state)
            pred = x + self.head(self.lstm.top(state))
            out.append(pred)
            x = carry_forward(obs[:, i], y[:, i], pred)
        return torch.stack(out, dim=1)
