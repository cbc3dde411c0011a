"""Sequence models for irregularly sampled trajectories: the shared interface and the registry.

Interface (every entry of ``SEQUENCE_MODELS`` follows it)::

    y_hat = model(t, y, obs)

- ``t`` (B, T) absolute observation times, strictly increasing along each row; the gaps may
  differ from sample to sample and from step to step.
- ``y`` (B, T, D) states (D = 2 for FitzHugh-Nagumo: v, w). Values where ``obs`` is False are
  never read: they are replaced with ``torch.where`` before any arithmetic, so NaNs there are
  harmless.
- ``obs`` (B, T) bool, the points the model may read. Column 0 must be observed.
- ``y_hat`` (B, T, D): ``y_hat[:, i]`` is the prediction of the state at ``t[:, i]``. It depends
  only on the observed values ``y[:, j]`` with ``j < i`` and on the times ``t[:, :i+1]`` (strictly
  causal). ``y_hat[:, 0]`` is ``y[:, 0]``. The models see times relative to ``t[:, 0]`` (they use
  gaps only), computed in float64 before the cast to the model's dtype.

Optional ``forecast_from`` (int): the column where the forecast region starts (the forecast
horizon of a test sequence, the predicted part of a rollout; nothing there is observed). The one
rollout protocol of this project: inside the forecast region every recurrent model feeds its own
prediction back at each grid time, as if it were an observation. Before it (the context window,
with its unobserved and held-out points) each model handles gaps its own way: the Neural ODE
integrates over them, T-LSTM and LSTM+dt (``mode="observations"``) update only at observations
and predict from the time elapsed since the last one, ODE-RNN evolves its hidden state, GRU-D
decays its inputs. The column is known to the caller before any prediction, so the models stay
strictly causal. Labelled ablations change this: ``feedback="none"`` (ODE-RNN's masked rollout,
GRU-D's relaxation to the mean) never feeds back, ``feedback="unobserved"`` and T-LSTM/LSTM+dt's
``mode="dense"`` feed back at every unobserved point (the original code's protocol).

Forced system: a model built with ``drive_omega`` = Omega > 0 also receives the drive's phase as
(cos Omega t, sin Omega t) of ABSOLUTE time (the drive of ``fhn_forced`` is cos Omega t); the phase
of ``t[:, 0]`` is computed in float64 and the models add Omega times the relative time to it.

Batches are vectorised over samples: each model loops over time steps only, with per-sample gaps
held in tensors.

Class attributes read by the trainer:

- ``is_baseline``: no trainable parameters, the trainer skips optimisation.
- ``fit_target``: ``"one_step"`` (default) trains on one-step-ahead predictions at observed points
  (MSE over observed ``i >= 1``, predicting each from the observations before it);
  ``"vector_field"`` regresses the true vector field (the paper's oracle shortcut, ablation only).
- ``min_length``: the shortest sequence the model accepts.
- ``feedback``: ``"forecast"`` (the one protocol), ``"none"`` or ``"unobserved"`` (ablations).

``prepare(t, y, obs)`` is called once with the training split before training; models that need
data statistics (GRU-D's empirical mean) take them there, never from the batch being predicted.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from otgap.registry import Registry

SEQUENCE_MODELS = Registry(
    "sequence model",
    {
        "last_observation": "otgap.models.baselines:LastObservation",
        "neural_ode": "otgap.models.neural_ode:NeuralODE",
        "neural_ode_oracle": "otgap.models.neural_ode:OracleNeuralODE",
        "tlstm": "otgap.models.tlstm:TLSTM",
        "lstm_dt": "otgap.models.lstm_dt:LSTMdt",
        "odernn": "otgap.models.odernn:ODERNN",
        "grud": "otgap.models.grud:GRUD",
    },
)


def check_inputs(
    t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor, *, state_dim: int, min_length: int = 2
) -> None:
    """Raise a ValueError/TypeError naming what is wrong with ``(t, y, obs)``."""
    for name, x in (("t", t), ("y", y), ("obs", obs)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if t.dim() != 2:
        raise ValueError(f"t must have shape (B, T), got {tuple(t.shape)}")
    B, T = t.shape
    if y.shape != (B, T, state_dim):
        raise ValueError(
            f"y must have shape (B, T, {state_dim}) = {(B, T, state_dim)} to match t, "
            f"got {tuple(y.shape)}"
        )
    if obs.shape != (B, T):
        raise ValueError(
            f"obs must have shape (B, T) = {(B, T)} to match t, got {tuple(obs.shape)}"
        )
    if obs.dtype != torch.bool:
        raise TypeError(f"obs must be a bool tensor, got {obs.dtype}")
    if not t.is_floating_point() or not y.is_floating_point():
        raise TypeError(f"t and y must be floating point, got {t.dtype} and {y.dtype}")
    if T < min_length:
        raise ValueError(
            f"sequences of length {T} are too short: the model needs at least {min_length} "
            "time points (one observed input and one point to predict)"
        )
    if B == 0:
        raise ValueError("empty batch (B = 0)")
    if not bool(obs[:, 0].all()):
        raise ValueError("obs[:, 0] must be True: the first point of every sequence is observed")
    if T > 1 and not bool((t[:, 1:] > t[:, :-1]).all()):
        raise ValueError("t must be strictly increasing along each row")


class SequenceModel(nn.Module):
    """Base class: validates the inputs, then calls ``_predict`` (the model's time loop)."""

    is_baseline: ClassVar[bool] = False
    fit_target: ClassVar[str] = "one_step"
    min_length: ClassVar[int] = 2

    def __init__(self, state_dim: int = 2, drive_omega: float = 0.0) -> None:
        super().__init__()
        if state_dim < 1:
            raise ValueError(f"state_dim must be >= 1, got {state_dim}")
        if not drive_omega >= 0:
            raise ValueError(f"drive_omega must be >= 0, got {drive_omega}")
        self.state_dim = state_dim
        self.drive_omega = float(drive_omega)
        self._forecast_from = 0
        self._phase0 = None

    def prepare(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> None:
        """Take statistics of the training split (default: nothing)."""

    drive_omega: float = 0.0

    def forward(
        self,
        t: torch.Tensor,
        y: torch.Tensor,
        obs: torch.Tensor,
        forecast_from: int | None = None,
    ) -> torch.Tensor:
        batched = under_vmap(obs)  # seeds trained together: their data were checked before
        if not batched:
            check_inputs(t, y, obs, state_dim=self.state_dim, min_length=self.min_length)
        T = t.shape[1]
        if forecast_from is None:
            forecast_from = T
        if not 1 <= int(forecast_from) <= T:
            raise ValueError(f"forecast_from must lie in [1, {T}], got {forecast_from}")
        if not batched and bool(obs[:, int(forecast_from) :].any()):
            raise ValueError(
                "points in the forecast region (columns >= forecast_from) are observed"
            )
        self._forecast_from = int(forecast_from)
        dtype = self._dtype()
        # Phase of the drive at each sample's first time, in float64 (absolute times are large).
        self._phase0 = None
        if self.drive_omega:
            self._phase0 = torch.remainder(self.drive_omega * t[:, 0].double(), 2.0 * math.pi).to(
                dtype
            )
        # Times relative to the first point, in float64 before the cast, so that long rollouts at
        # large absolute times keep their gaps exact in float32. Apart from the drive's phase,
        # every model here uses gaps only.
        t = (t.double() - t[:, :1].double()).to(dtype)
        y = torch.where(obs.unsqueeze(-1), y.to(dtype), torch.zeros((), dtype=dtype))
        return self._predict(t, y, obs)

    def drive(self, s: torch.Tensor) -> torch.Tensor:
        """(cos, sin) of the drive's phase at relative times ``s`` (B,) -> (B, 2); (B, 0) unforced."""
        if not self.drive_omega:
            return s.new_zeros(s.shape + (0,))
        phase = self._phase0 + self.drive_omega * s
        return torch.stack([torch.cos(phase), torch.sin(phase)], dim=-1)

    @property
    def n_drive(self) -> int:
        return 2 if self.drive_omega else 0

    def in_forecast(self, i: int) -> bool:
        """Whether column ``i`` lies in the forecast region of the current call."""
        return i >= self._forecast_from

    def _dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        for b in self.buffers():
            return b.dtype
        return torch.get_default_dtype()

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def under_vmap(x: torch.Tensor) -> bool:
    """Whether ``x`` is batched by ``torch.func.vmap`` (seeds trained together, see
    ``otgap.train.batched``). Such a tensor has no Python truth value: the input checks are
    skipped for it (the batched trainer checks every seed's data before training)."""
    return bool(torch._C._functorch.is_batchedtensor(x))


def any_true(mask: torch.Tensor) -> bool:
    """``bool(mask.any())``, used only to skip work whose result the mask discards; inside vmap
    (no truth value) it is True, and the masked work gives the same values."""
    return under_vmap(mask) or bool(mask.any())


def rnn_cell(cell: nn.Module, x: torch.Tensor, state):
    """``cell(x, state)`` for an ``nn.LSTMCell`` (state ``(h, c)``) or ``nn.GRUCell`` (state
    ``h``). Under vmap, where the fused kernels have no batching rule, the same equations are
    written out with the cell's own weights (gate order i, f, g, o and r, z, n as in torch)."""
    h = state[0] if isinstance(state, tuple) else state
    if not (under_vmap(x) or under_vmap(h)):
        return cell(x, state)
    gi = x @ cell.weight_ih.T + cell.bias_ih
    gh = h @ cell.weight_hh.T + cell.bias_hh
    if isinstance(cell, nn.LSTMCell):
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if isinstance(cell, nn.GRUCell):
        ir, iz, in_ = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return (1.0 - z) * n + z * h
    raise TypeError(f"rnn_cell: no batched form for {type(cell).__name__}")


FEEDBACK_MODES = ("forecast", "none", "unobserved")


def check_feedback(feedback: str) -> str:
    if feedback not in FEEDBACK_MODES:
        raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got '{feedback}'")
    return feedback


def feeds_back(model: SequenceModel, feedback: str, i: int, obs_i: torch.Tensor) -> torch.Tensor:
    """(B,) bool: where the model consumes its own prediction at column ``i`` (never observed)."""
    if feedback == "unobserved":
        return ~obs_i
    if feedback == "forecast" and model.in_forecast(i):
        return torch.ones_like(obs_i)
    return torch.zeros_like(obs_i)


def carry_forward(obs_i: torch.Tensor, value: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """``value`` where ``obs_i`` (B,) is True, else ``fallback``; broadcast over the last axes."""
    mask = obs_i.reshape(obs_i.shape + (1,) * (value.dim() - 1))
    return torch.where(mask, value, fallback)


def build_sequence_model(name: str, **kwargs: Any) -> SequenceModel:
    """Instantiate the registry entry ``name`` with ``kwargs`` (clear error for unknown names/keys)."""
    cls = SEQUENCE_MODELS[name]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise TypeError(f"cannot build sequence model '{name}' with {kwargs}: {exc}") from exc
