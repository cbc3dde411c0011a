"""Training for the Landau stage (``systems.landau``): Landau nets with Langevin vs plain FC nets.

One run is (model, optimizer, lr, seed) on one data set with inputs in [0, 1]. Landau models
(``landau1``, ``landau2`` and the ablation ``landau1_nobn``) train on :func:`otgap.models.landau.landau_loss` with the source's
``alpha``/``gamma``, and after every optimizer step each layer's beta takes the source's Allen-Cahn
update (as coded: ``beta <- beta + dt (beta - beta^3)``, see ``otgap.models.landau``). The
baselines ``fc1`` (one linear layer) and ``fc2`` (linear-ReLU-linear with the Landau net's hidden
width) train on cross-entropy. Minibatches are drawn in an order seeded by the run's seed; the test
accuracy is recorded after every epoch (epoch 0 = initial weights), and at the end the accuracy
under Gaussian input noise of each ``noise_sigmas`` (one fixed draw per sigma and seed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from otgap.data.dataset import ClassificationData
from otgap.models.classifiers import CLASSIFIERS
from otgap.models.landau import (
    SEED_ALPHA,
    SEED_BETA_INIT,
    SEED_GAMMA,
    SEED_HIDDEN,
    LandauNet,
    landau_loss,
)
from otgap.optim import OPTIMIZERS
from otgap.train.determinism import seed_everything

LANDAU_MODELS = ("landau1", "landau1_nobn", "landau2")
FC_MODELS = ("fc1", "fc2")
MODELS = LANDAU_MODELS + FC_MODELS
BATCHNORM_MODELS = ("landau1", "landau2")
_EVAL_CHUNK = 4096


@dataclass
class LandauRun:
    """One run's settings (defaults: the source's values, docs/sources.md#the-landau-network-and-the-langevin-optimizer)."""

    model: str
    optimizer: str
    lr: float
    seed: int
    epochs: int = 100
    batch_size: int = 128
    hidden: int = SEED_HIDDEN
    alpha: float = SEED_ALPHA
    gamma: float = SEED_GAMMA
    beta_init: float = SEED_BETA_INIT
    kappa: float = 1e-2
    dt: float = 1e-3
    optimizer_hyper: dict[str, Any] = field(default_factory=dict)
    noise_sigmas: tuple[float, ...] = (0.1, 0.3)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"Landau stage: unknown model '{self.model}'; choose one of {MODELS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Landau stage: unknown optimizer '{self.optimizer}'; known: {sorted(OPTIMIZERS)}"
            )
        if OPTIMIZERS[self.optimizer].full_batch:
            raise ValueError(
                f"Landau stage: optimizer '{self.optimizer}' takes full-batch steps; use a "
                "minibatch optimizer (langevin, sgd, momentum, adam, adamw)"
            )
        for key in ("epochs", "batch_size", "hidden"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"Landau stage: {key} must be >= 1, got {getattr(self, key)}")
        if not self.dt > 0:
            raise ValueError(f"Landau stage: dt must be positive, got {self.dt}")
        OPTIMIZERS[self.optimizer].hyper(**self.optimizer_hyper)  # unknown names fail here
        self.noise_sigmas = tuple(float(s) for s in self.noise_sigmas)

    @property
    def is_landau(self) -> bool:
        return self.model in LANDAU_MODELS


def build_model(run: LandauRun, input_shape, n_classes: int) -> nn.Module:
    if run.is_landau:
        return CLASSIFIERS[run.model](
            input_shape,
            n_classes,
            hidden=run.hidden,
            beta_init=run.beta_init,
            alpha=run.alpha,
            gamma=run.gamma,
        )
    hidden = () if run.model == "fc1" else (run.hidden,)
    return CLASSIFIERS["mlp"](input_shape, n_classes, hidden=hidden, activation="relu")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), _EVAL_CHUNK):
        correct += int(
            (model(x[i : i + _EVAL_CHUNK]).argmax(dim=-1) == y[i : i + _EVAL_CHUNK]).sum()
        )
    model.train(was_training)
    return correct / len(x)


def noisy_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float, seed: int):
    """Accuracy on ``x + sigma N(0, 1)`` (one draw from a generator seeded by ``seed``)."""
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return accuracy(model, x + sigma * noise.to(x.device), y)


def epochs_to_fraction(test_acc: np.ndarray, fraction: float = 0.95) -> int:
    """First epoch whose test accuracy reaches ``fraction`` of the final one (epoch 0: initial)."""
    final = float(test_acc[-1])
    return int(np.argmax(np.asarray(test_acc) >= fraction * final))


def train_landau_run(
    data: ClassificationData,
    run: LandauRun,
    *,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train one run; return the per-epoch history and a summary (see the module docstring)."""
    seed_everything(run.seed)
    model = build_model(run, data.input_shape, data.n_classes)
    spec = OPTIMIZERS[run.optimizer]
    optimizer = spec.build(model.parameters(), run.lr, **run.optimizer_hyper)
    loss_fn: Callable = (
        (lambda out, yb: landau_loss(out, yb, run.alpha, run.gamma))
        if run.is_landau
        else F.cross_entropy
    )
    order = torch.Generator().manual_seed(run.seed)
    x, y = data.x_train, data.y_train
    n = len(x)
    rows = [_row(0, math.nan, model, data)]
    if on_epoch is not None:
        on_epoch(0, model)
    diverged_epoch = None
    n_steps = 0
    start = time.perf_counter()
    for epoch in range(1, run.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=order)
        total, seen = 0.0, 0
        for i in range(0, n, run.batch_size):
            idx = perm[i : i + run.batch_size]
            if len(idx) < 2 and run.model in BATCHNORM_MODELS:
                continue  # BatchNorm needs two samples; skip a last batch of one
            xb, yb = x[idx], y[idx]
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged_epoch = epoch
                break
            loss.backward()
            optimizer.step()
            n_steps += 1
            if run.is_landau:
                assert isinstance(model, LandauNet)
                model.update_beta(out.detach(), yb, run.dt, run.kappa)
            total += value * len(idx)
            seen += len(idx)
        if diverged_epoch is not None:
            if log:
                log(f"non-finite loss in epoch {epoch}: run stopped")
            break
        rows.append(_row(epoch, total / max(seen, 1), model, data))
        if on_epoch is not None:
            on_epoch(epoch, model)
        if log and (epoch % max(1, run.epochs // 10) == 0 or epoch == run.epochs):
            log(f"{run.model}/{run.optimizer} seed {run.seed} epoch {epoch}: {_fmt(rows[-1])}")
    wall = time.perf_counter() - start
    history = pd.DataFrame(rows)
    test_acc = history.test_acc.to_numpy()
    summary: dict[str, Any] = {
        **{k: v for k, v in asdict(run).items() if k not in ("optimizer_hyper", "noise_sigmas")},
        "dataset": data.name,
        "test_acc": float(test_acc[-1]),
        "epochs_to_95": epochs_to_fraction(test_acc),
        "epochs_done": int(history.epoch.iloc[-1]),
        "diverged_epoch": diverged_epoch,
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_classes": int(data.n_classes),
        "steps": n_steps,
        **{f"hyper_{k}": v for k, v in run.optimizer_hyper.items()},
        # chance level: the accuracy of always predicting the test part's most frequent class
        "chance_acc": float(torch.bincount(data.y_test).max()) / len(data.y_test),
    }
    for sigma in run.noise_sigmas:
        summary[f"acc_noise_{sigma:g}"] = noisy_accuracy(
            model, data.x_test, data.y_test, sigma, seed=run.seed
        )
    return history, {**summary, "wall_s": wall}


def _row(epoch: int, train_loss: float, model: nn.Module, data: ClassificationData) -> dict:
    row = {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_acc": accuracy(model, data.x_train, data.y_train),
        "test_acc": accuracy(model, data.x_test, data.y_test),
    }
    if isinstance(model, LandauNet):
        for i, layer in enumerate(model.landau_layers, start=1):
            row[f"beta_{i}"] = float(layer.beta.detach().mean())
    return row


def _fmt(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch")
