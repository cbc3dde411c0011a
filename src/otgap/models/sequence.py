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

Where ``obs`` is False the model continues from its own prediction (or, for models with a masked
update, keeps its memory and lets it decay or evolve), so a single call covers the three
evaluation settings: interpolation at held-out points inside the context window, extrapolation
over the forecast horizon, and long rollouts from a short observed buffer.

Batches are vectorised over samples: each model loops over time steps only, with per-sample gaps
held in tensors.

Class attributes read by the trainer:

- ``is_baseline``: no trainable parameters, the trainer skips optimisation.
- ``fit_target``: ``"one_step"`` (default) trains on one-step-ahead predictions at observed points
  (MSE over observed ``i >= 1``, predicting each from the observations before it);
  ``"vector_field"`` regresses the true vector field (the paper's oracle shortcut, ablation only).
- ``min_length``: the shortest sequence the model accepts.

``prepare(t, y, obs)`` is called once with the training split before training; models that need
data statistics (GRU-D's empirical mean) take them there, never from the batch being predicted.
"""

from __future__ import annotations

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
        raise ValueError(f"obs must have shape (B, T) = {(B, T)} to match t, got {tuple(obs.shape)}")
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

    def __init__(self, state_dim: int = 2) -> None:
        super().__init__()
        if state_dim < 1:
            raise ValueError(f"state_dim must be >= 1, got {state_dim}")
        self.state_dim = state_dim

    def prepare(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> None:
        """Take statistics of the training split (default: nothing)."""

    def forward(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        check_inputs(t, y, obs, state_dim=self.state_dim, min_length=self.min_length)
        dtype = self._dtype()
        # Times relative to the first point, in float64 before the cast, so that long rollouts at
        # large absolute times keep their gaps exact in float32. Every model here uses gaps only.
        t = (t.double() - t[:, :1].double()).to(dtype)
        y = torch.where(obs.unsqueeze(-1), y.to(dtype), torch.zeros((), dtype=dtype))
        return self._predict(t, y, obs)

    def _dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        for b in self.buffers():
            return b.dtype
        return torch.get_default_dtype()

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


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
