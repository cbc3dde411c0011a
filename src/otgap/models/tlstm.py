"""Time-aware LSTM (T-LSTM, Baytas et al., KDD 2017).

Before each update the previous memory is split into a short-term part, which is discounted by the
elapsed time, and a long-term part, which is kept::

    C_S     = tanh(W_d C_{t-1} + b_d)        short-term memory
    C_S_hat = C_S * g(dt),  g(dt) = 1 / log(e + dt)
    C_T     = C_{t-1} - C_S                  long-term memory
    C*      = C_T + C_S_hat                  adjusted previous memory

followed by the usual gates with ``C_t = f * C* + i * C_tilde`` and ``h_t = o * tanh(C_t)``.

As a forecaster, ``mode="observations"`` (default, Baytas et al.'s use): the cell updates only at
observations, the decay driven by the time elapsed since the previous observation; the prediction at
any time ``t`` is a change added to the last consumed state, read from ``(h, t - t_last)`` by a small
MLP head: ``y_hat = x_last + head([h, t - t_last])``. Inside a forecast region (see
``otgap.models.sequence``) it feeds back its own prediction at each grid time as if it were an
observation (so the decay then sees the grid gaps). ``mode="dense"`` (the original code's, kept as a
labelled ablation): the cell steps at every grid point, consuming the observation or its own
prediction, with the previous grid gap as elapsed time, and also reads the gap to the time it
predicts: ``y_hat_i = x_{i-1} + W h_i``.

Forced system: the drive's phase (cos, sin) at the consumed time enters the cell's input, and at
the predicted time the head's input.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from otgap.models.sequence import SequenceModel, any_true, carry_forward


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

    # the interface of ``predict_at_observations``
    def initial(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return like.new_zeros(batch, self.hidden), like.new_zeros(batch, self.hidden)

    def update(self, x, elapsed, drive, state):
        return self(torch.cat([x, drive], dim=-1), elapsed, state)

    @staticmethod
    def top(state) -> torch.Tensor:
        return state[0]


class TLSTM(SequenceModel):
    def __init__(
        self,
        hidden: int = 128,
        mode: str = "observations",
        drive_omega: float = 0.0,
        state_dim: int = 2,
    ) -> None:
        super().__init__(state_dim, drive_omega)
        if mode not in TIME_MODES:
            raise ValueError(f"mode must be one of {TIME_MODES}, got '{mode}'")
        self.mode = mode
        nd = self.n_drive
        if mode == "dense":
            self.cell = TLSTMCell(state_dim + 1 + nd, hidden)
            self.head = nn.Linear(hidden, state_dim)
        else:
            self.cell = TLSTMCell(state_dim + nd, hidden)
            self.head = nn.Sequential(
                nn.Linear(hidden + 1 + nd, hidden), nn.Tanh(), nn.Linear(hidden, state_dim)
            )

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        if self.mode == "dense":
            return self._predict_dense(t, y, obs)
        return predict_at_observations(self, self.cell, t, y, obs)

    def _predict_dense(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        B, T, _ = y.shape
        h = y.new_zeros(B, self.cell.hidden)
        c = y.new_zeros(B, self.cell.hidden)
        x = y[:, 0]
        out = [x]
        elapsed = torch.zeros_like(t[:, 0])
        for i in range(1, T):
            gap = t[:, i] - t[:, i - 1]
            inp = torch.cat([x, gap.unsqueeze(-1), self.drive(t[:, i - 1])], dim=-1)
            h, c = self.cell(inp, elapsed, (h, c))
            pred = x + self.head(h)
            out.append(pred)
            x = carry_forward(obs[:, i], y[:, i], pred)
            elapsed = gap
        return torch.stack(out, dim=1)


TIME_MODES = ("observations", "dense")


def predict_at_observations(
    model: SequenceModel, cell, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor
) -> torch.Tensor:
    """The observation-driven loop shared by T-LSTM and LSTM+dt (``mode="observations"``).

    The cell is updated with ``[x, drive]`` (T-LSTM: the elapsed time drives the memory decay) or ``[x, elapsed, drive]`` (LSTM+dt) at each observation and, in the forecast region, at
    each fed-back prediction; ``elapsed`` is the time since the previous update. Predictions come
    from ``x_last + head([h, t - t_last, drive(t)])``.
    """
    B, T, _ = y.shape
    x = y[:, 0]
    t_last = t[:, 0]
    zero = torch.zeros_like(t_last)
    state = cell.initial(B, y)
    state = cell.update(x, zero, model.drive(t_last), state)
    out = [x]
    for i in range(1, T):
        since = t[:, i] - t_last
        pred = x + model.head(
            torch.cat([cell.top(state), since.unsqueeze(-1), model.drive(t[:, i])], dim=-1)
        )
        out.append(pred)
        use = obs[:, i] | (model.in_forecast(i) & torch.ones_like(obs[:, i]))
        if not any_true(use):
            continue
        x_new = carry_forward(obs[:, i], y[:, i], pred)
        new_state = cell.update(x_new, since, model.drive(t[:, i]), state)
        state = tuple(carry_forward(use, n, o) for n, o in zip(new_state, state, strict=True))
        x = carry_forward(use, x_new, x)
        t_last = torch.where(use, t[:, i], t_last)
    return torch.stack(out, dim=1)
