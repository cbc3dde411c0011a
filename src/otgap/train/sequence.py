"""Training of the sequence models in ``otgap.models.sequence`` on irregularly sampled splits.

Objective ``"multi_step"`` (default): the loss the models are scored with. Each training sequence
is cut after its context window plus the first ``H_e`` horizon points, and the model predicts it in
one call with the forecast region starting at the horizon (``forecast_from=n_context``): at
observed context points it predicts one step ahead from the observations before them, over the
horizon it runs open-loop, feeding back its own predictions exactly as in the evaluation's
extrapolation and rollouts. The loss is the mean squared error over the observed context points
``i >= 1`` and the ``H_e`` horizon points. Curriculum: ``H_e`` grows linearly from 1 to the full
horizon over ``horizon_ramp_epochs`` epochs. The validation loss is the same objective over the full
horizon (so it is comparable across epochs), and early stopping and best-weight selection use it.
Held-out interpolation targets of the training split never enter the loss (they count as
unobserved).

Objective ``"one_step"`` (the original code's protocol, kept as a switch): mean squared error of the
teacher-forced one-step predictions at observed points ``i >= 1`` only; the horizon is unused.

Convergence: with ``patience`` (epochs) set, training stops once the validation loss has not
improved for ``patience`` epochs (``epochs`` is then an upper bound), and ``keep="best"`` restores the
weights of the best validation loss (``keep="last"``: the original's last-epoch weights). The best
weights live in the loop's ``extras``, so they survive a checkpoint and resume.

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
    objective: str = "multi_step"
    horizon_ramp_epochs: int = 0
    patience: int | None = None  # epochs without a better validation loss; None: never stop
    keep: str = "best"

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"need epochs >= 0, batch_size >= 1, lr > 0; got {self}")
        if self.eval_every_epochs < 1:
            raise ValueError(f"eval_every_epochs must be >= 1, got {self.eval_every_epochs}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got '{self.objective}'")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got '{self.keep}'")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 epoch or None, got {self.patience}")
        if self.horizon_ramp_epochs < 0:
            raise ValueError(f"horizon_ramp_epochs must be >= 0, got {self.horizon_ramp_epochs}")


OBJECTIVES = ("multi_step", "one_step")


def curriculum_horizon(epoch: int, horizon: int, ramp_epochs: int) -> int:
    """Horizon points in the loss at ``epoch``: 1 at epoch 0 growing linearly to ``horizon``."""
    if horizon <= 0:
        return 0
    if ramp_epochs <= 0:
        return horizon
    return max(1, min(horizon, 1 + (epoch * (horizon - 1)) // ramp_epochs))


def ramp_epochs(cfg: FitConfig, kind: str) -> int:
    """Epochs during which the training objective still changes: the multi-step curriculum's
    ramp (0 for other objectives). The LR plateau and early stopping's patience count only after
    it, so a loss still rising with the horizon neither halves the rate nor ends training."""
    return int(cfg.horizon_ramp_epochs) if kind == "multi_step" else 0


def patience_exhausted(epoch: int, best_epoch: int, patience: int | None, ramp: int) -> bool:
    """Early stopping: ``patience`` epochs without a better validation loss, counted from the
    best epoch or the end of the ramp, whichever is later."""
    return patience is not None and epoch - max(int(best_epoch), int(ramp)) >= int(patience)


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


def multi_step_loss(
    model: SequenceModel,
    t: torch.Tensor,
    y: torch.Tensor,
    obs: torch.Tensor,
    n_context: int,
    horizon: int,
):
    """MSE over the observed context points i >= 1 and the first ``horizon`` points after the
    context, predicted in one call with the forecast region from ``n_context`` (open-loop)."""
    length = n_context + horizon
    if not 2 <= n_context <= t.shape[1] or length > t.shape[1]:
        raise ValueError(
            f"n_context={n_context} + horizon={horizon} do not fit sequences of {t.shape[1]} points"
        )
    t, y, obs = t[:, :length], y[:, :length], obs[:, :length]
    y_hat = model(t, y, obs, forecast_from=min(n_context, length))
    mask = obs.clone()
    mask[:, n_context:] = True
    mask[:, 0] = False
    if not bool(mask.any()):
        raise ValueError(
            "no observed or horizon point after column 0 in this batch: nothing to fit"
        )
    target = torch.where(mask.unsqueeze(-1), y, torch.zeros((), dtype=y.dtype)).to(y_hat.dtype)
    return (y_hat - target)[mask].pow(2).mean()


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
    n_context: int | None = None,
) -> LoopResult | None:
    """Train ``model`` in place with Adam; returns the loop result (None for a baseline).

    ``model.prepare`` is called with the training split first. ``true_field`` is required for
    models whose ``fit_target`` is ``"vector_field"``; ``n_context`` (the context window's length;
    the rest of each sequence is the horizon) for ``cfg.objective == "multi_step"``. The model and
    the splits are moved to ``device``; the model stays there. ``result.extras`` holds
    ``best_val_loss``, ``best_epoch`` and ``stopped_epoch``.
    ``identity`` (the job's parameters and code digests) keys the checkpoint: one written by
    another identity is discarded, not resumed.
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

        def loss_fn(tb, yb, ob, epoch=None):
            return vector_field_loss(model, tb, yb, ob, true_field)
    elif model.fit_target == "one_step" and cfg.objective == "one_step":

        def loss_fn(tb, yb, ob, epoch=None):
            return one_step_loss(model, tb, yb, ob)
    elif model.fit_target == "one_step":
        if n_context is None:
            raise ValueError("the multi-step objective needs n_context (the context length)")
        full = t.shape[1] - int(n_context)

        def loss_fn(tb, yb, ob, epoch=None):
            h = full if epoch is None else curriculum_horizon(epoch, full, cfg.horizon_ramp_epochs)
            return multi_step_loss(model, tb, yb, ob, int(n_context), h)
    else:
        raise ValueError(f"unknown fit_target '{model.fit_target}' of {type(model).__name__}")

    multi = model.fit_target == "one_step" and cfg.objective != "one_step"
    kind = "multi_step" if multi else model.fit_target
    ramp = ramp_epochs(cfg, kind)
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
        loss = loss_fn(t[idx], y[idx], obs[idx], epoch)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return float(loss.detach())

    extras: dict = {"best_val_loss": math.inf, "best_epoch": 0, "best_state": None}

    def eval_fn(step: int) -> dict[str, float]:
        record = {"epoch": step / per_epoch, "lr": opt.param_groups[0]["lr"]}
        if val is not None:
            model.eval()
            with torch.no_grad():
                vloss = float(loss_fn(*val))
            record["val_loss"] = vloss
            if (
                sched is not None
                and step > 0
                and math.isfinite(vloss)
                and step // per_epoch >= ramp
            ):
                sched.step(vloss)
            if vloss < extras["best_val_loss"]:
                extras["best_val_loss"] = vloss
                extras["best_epoch"] = step // per_epoch
                extras["best_state"] = {
                    k: v.detach().clone() for k, v in model.state_dict().items()
                }
        return record

    def should_stop(step: int) -> bool:
        if val is None:
            return False
        return patience_exhausted(step // per_epoch, extras["best_epoch"], cfg.patience, ramp)

    stateful = {"model": model, "optimizer": opt}
    if sched is not None:
        stateful["scheduler"] = sched
    result = train_loop(
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
        extras=extras,
        should_stop=should_stop,
    )
    extras = result.extras
    extras["stopped_epoch"] = result.steps_done // per_epoch
    if cfg.keep == "best" and extras.get("best_state") is not None:
        model.load_state_dict(extras["best_state"])
    extras.pop("best_state", None)
    return result


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


def fit_config(settings: dict) -> FitConfig:
    """The FitConfig of a training job's settings (the ``fhn.train`` config keys)."""
    return FitConfig(
        epochs=int(settings["epochs"]),
        batch_size=int(settings["batch_size"]),
        lr=float(settings["lr"]),
        grad_clip=settings.get("grad_clip"),
        plateau_factor=float(settings.get("plateau_factor", 0.5)),
        plateau_patience=settings.get("plateau_patience"),
        eval_every_epochs=int(settings.get("eval_every", 1)),
        checkpoint_every_epochs=int(settings.get("checkpoint_every", 0)),
        objective=str(settings.get("objective", "multi_step")),
        horizon_ramp_epochs=int(settings.get("horizon_ramp_epochs", 0)),
        patience=settings.get("patience"),
        keep=str(settings.get("keep", "best")),
        # progress in the job's log: about 20 lines over the epoch bound
        log_every_epochs=int(settings.get("log_every", max(1, int(settings["epochs"]) // 20))),
    )


def train_seed(
    name: str,
    model_kwargs: dict,
    data: dict[str, np.ndarray],
    cfg: FitConfig,
    seed: int,
    *,
    true_field: Callable | None = None,
    checkpoint_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    label: str = "fhn",
    device: str | torch.device = "cpu",
    identity: Mapping[str, Any] | str | None = None,
) -> tuple[SequenceModel, LoopResult | None]:
    """Build model ``name`` with ``model_kwargs`` under ``seed`` and train it on ``data``'s train
    split (validation on its val split). One seed; a job loops over its seeds with this."""
    from otgap.models.sequence import build_sequence_model
    from otgap.train.determinism import seed_everything

    seed_everything(seed)
    model = build_sequence_model(name, **model_kwargs)
    result = fit_sequence_model(
        model,
        split_tensors(data, "train"),
        cfg,
        seed=seed,
        val=split_tensors(data, "val"),
        true_field=true_field,
        checkpoint_dir=checkpoint_dir,
        log=log,
        label=label,
        device=device,
        identity=identity,
        n_context=int(data["n_context"]),
    )
    model.cpu()
    return model, result
