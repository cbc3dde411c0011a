"""Training of the sequence models in ``otgap.models.sequence`` on irregularly sampled splits.

Loss (``fit_target = "one_step"``): mean squared error of the predictions at observed points
``i >= 1``. Because every model is strictly causal, the prediction at an observed point comes
from the observations before it over that sample's own gap, so this is a one-step-ahead loss on
the irregular trajectory; held-out targets and the forecast horizon never enter it.

Loss (``fit_target = "vector_field"``, ablation only): mean squared error between the model's
field and the TRUE field at the observed training states (the paper's shortcut; an oracle).

Minibatches are drawn without replacement, the permutation of epoch ``e`` from a generator seeded
by ``(seed, e)``, so a run resumed from a checkpoint sees the same batches as an uninterrupted one.
Gradient clipping, when set, is applied after ``backward`` (the paper's code called it before,
where it does nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgap.models.sequence import SequenceModel
from otgap.train.loop import LoopResult, train_loop

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    grad_clip: float | None = None
    plateau_factor: float = 0.5
    plateau_patience: int | None = None  # in evaluations (one per ``eval_every_epochs``)
    eval_every_epochs: int = 1
    checkpoint_every_epochs: int = 0
    log_every_epochs: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"need epochs >= 0, batch_size >= 1, lr > 0; got {self}")
        if self.eval_every_epochs < 1:
            raise ValueError(f"eval_every_epochs must be >= 1, got {self.eval_every_epochs}")


def split_tensors(data: dict[str, np.ndarray], split: str) -> Split:
    """``(t, y, obs)`` of ``split`` as tensors (t float64, y float32, obs bool)."""
    keys = [f"{split}_t", f"{split}_y", f"{split}_obs"]
    missing = [k for k in keys if k not in data]
    if missing:
        raise KeyError(f"dataset lacks the key(s) {missing} for split '{split}'")
    t = torch.as_tensor(np.asarray(data[keys[0]], dtype=np.float64))
    y = torch.as_tensor(np.asarray(data[keys[1]], dtype=np.float32))
    obs = torch.as_tensor(np.asarray(data[keys[2]], dtype=bool))
    return t, y, obs


def one_step_loss(model: SequenceModel, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor):
    """MSE of the predictions at observed points i >= 1 (over points and components)."""
    y_hat = model(t, y, obs)
    mask = obs[:, 1:]
    if not bool(mask.any()):
        raise ValueError("no observed point after column 0 in this batch: nothing to fit")
    target = torch.where(obs.unsqueeze(-1), y, torch.zeros((), dtype=y.dtype)).to(y_hat.dtype)
    diff = (y_hat[:, 1:] - target[:, 1:])[mask]
    return diff.pow(2).mean()


def vector_field_loss(
    model: SequenceModel,
    t: torch.Tensor,
    y: torch.Tensor,
    obs: torch.Tensor,
    true_field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
):
    """MSE between ``model.vector_field`` and ``true_field`` at the observed states (ORACLE)."""
    if not hasattr(model, "vector_field"):
        raise TypeError(f"{type(model).__name__} has no vector_field to regress")
    tt, yy = t[obs].double(), y[obs].double()
    target = true_field(tt, yy)
    dtype = next(model.parameters()).dtype
    pred = model.vector_field(tt.to(dtype), yy.to(dtype))
    return (pred - target.to(dtype)).pow(2).mean()


def fit_sequence_model(
    model: SequenceModel,
    train: Split,
    cfg: FitConfig,
    *,
    seed: int,
    val: Split | None = None,
    true_field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    checkpoint_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    label: str = "fhn",
    device: str | torch.device = "cpu",
    identity: Mapping[str, Any] | str | None = None,
) -> LoopResult | None:
    """Train ``model`` in place with Adam; returns the loop result (None for a baseline).

    ``model.prepare`` is called with the training split first. ``true_field`` is required for
    models whose ``fit_target`` is ``"vector_field"``. The model and the splits are moved to
    ``device``; the model stays there. ``identity`` (the job's parameters and code digests) keys
    the checkpoint: one written by another identity is discarded, not resumed.
    """
    device = torch.device(device)
    model.to(device)
    t, y, obs = (x.to(device) for x in train)
    if val is not None:
        val = tuple(x.to(device) for x in val)
    model.prepare(t, y, obs)
    if model.is_baseline:
        return None
    if model.fit_target == "vector_field":
        if true_field is None:
            raise ValueError(f"{type(model).__name__} regresses the true field: pass true_field")

        def loss_fn(tb, yb, ob):
            return vector_field_loss(model, tb, yb, ob, true_field)
    elif model.fit_target == "one_step":

        def loss_fn(tb, yb, ob):
            return one_step_loss(model, tb, yb, ob)
    else:
        raise ValueError(f"unknown fit_target '{model.fit_target}' of {type(model).__name__}")

    n = t.shape[0]
    per_epoch = math.ceil(n / cfg.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.plateau_patience is not None:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )

    def step_fn(step: int) -> float:
        epoch, k = divmod(step, per_epoch)
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch)
        idx = torch.randperm(n, generator=gen)[k * cfg.batch_size : (k + 1) * cfg.batch_size]
        idx = idx.to(device)
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(t[idx], y[idx], obs[idx])
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return float(loss.detach())

    def eval_fn(step: int) -> dict[str, float]:
        record = {"epoch": step / per_epoch, "lr": opt.param_groups[0]["lr"]}
        if val is not None:
            model.eval()
            with torch.no_grad():
                vloss = float(loss_fn(*val))
            record["val_loss"] = vloss
            if sched is not None and step > 0 and math.isfinite(vloss):
                sched.step(vloss)
        return record

    stateful = {"model": model, "optimizer": opt}
    if sched is not None:
        stateful["scheduler"] = sched
    return train_loop(
        step_fn=step_fn,
        total_steps=cfg.epochs * per_epoch,
        seed=seed,
        stateful=stateful,
        eval_fn=eval_fn,
        eval_every=cfg.eval_every_epochs * per_epoch,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=cfg.checkpoint_every_epochs * per_epoch,
        log_every=cfg.log_every_epochs * per_epoch,
        label=label,
        log=log,
        identity=identity,
    )


def save_sequence_model(path: str | Path, name: str, kwargs: dict, model: SequenceModel) -> None:
    """Write ``{"model": name, "kwargs": kwargs, "state_dict": ...}`` atomically."""
    from otgap.io import write_torch

    payload = {"model": name, "kwargs": dict(kwargs), "state_dict": model.state_dict()}
    write_torch(path, payload)


def load_sequence_model(path: str | Path) -> tuple[str, SequenceModel]:
    """Rebuild a model written by ``save_sequence_model``; returns (name, model in eval mode)."""
    from otgap.models.sequence import build_sequence_model

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file '{p}' does not exist; run the training rule first")
    payload = torch.load(p, map_location="cpu", weights_only=True)
    model = build_sequence_model(payload["model"], **payload["kwargs"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return payload["model"], model
