"""BiostatisV6's own benchmark: ResNet-18 on CIFAR-10, AdamW vs BiostatisV6, as its authors' script
(``experiments/resnet18_compare.py``) trains it: RandomCrop(32, padding 4) and horizontal flips,
Normalize(0.5, 0.5), batch 128 (last batch partial), shuffled every epoch, cross-entropy, test
accuracy after every epoch. Augmentation is written in torch (batched, one generator per step, so
a resumed run draws the same crops); training goes through ``otgap.train.loop.train_loop``
(checkpoints, resume, divergence).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from otgap.data.classification import ClassificationData
from otgap.models.resnet import resnet18
from otgap.optim import OPTIMIZERS
from otgap.optim.biostatis import summarise_trace, update_diagnostics
from otgap.optim.memory import optimizer_state_bytes
from otgap.train.loop import train_loop

MEAN, STD = 0.5, 0.5  # Normalize((0.5,) * 3, (0.5,) * 3)


def augment(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random ``padding``-pixel zero-padded crops back to the input size, then a horizontal flip
    with probability 1/2, each drawn per image (torchvision's RandomCrop + RandomHorizontalFlip on
    images in [0, 1], whose zero fill is black)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = top[:, None] + torch.arange(h, device=x.device)  # (b, h)
    cols = left[:, None] + torch.arange(w, device=x.device)  # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - MEAN) / STD


@dataclass
class CifarSettings:
    optimizer: str
    lr: float
    optimizer_hyper: Mapping[str, Any]
    seed: int = 0
    epochs: int = 5
    batch_size: int = 128
    device: str = "auto"

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), 1000):
        out = model(normalize(x[i : i + 1000].to(device)))
        correct += int((out.argmax(1) == y[i : i + 1000].to(device)).sum())
    return correct / len(x)  # a fraction, as the EoS stage's test_acc


def train_cifar(
    data: ClassificationData,
    settings: CifarSettings,
    *,
    checkpoint_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, torch.Tensor]]:
    """Train ResNet-18 on ``data``; return per-epoch history, a summary and the final weights."""
    from otgap.train.determinism import seed_everything

    s = settings
    if s.epochs < 1 or s.batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {s.epochs}, {s.batch_size}")
    if tuple(data.x_train.shape[1:]) != (3, 32, 32):
        raise ValueError(f"expected CIFAR-10 images (3, 32, 32), got {tuple(data.x_train.shape)}")
    spec = OPTIMIZERS[s.optimizer]
    device = s.resolved_device()
    seed_everything(s.seed)
    model = resnet18(data.n_classes).to(device)
    optimizer = spec.build(model.parameters(), s.lr, **dict(s.optimizer_hyper))
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / s.batch_size)
    total = s.epochs * steps_per_epoch
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    extras: dict[str, Any] = {"train_seconds": 0.0, "loss_sum": 0.0}
    order: dict[int, torch.Tensor] = {}

    def step_fn(step: int) -> float:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in order:
            order.clear()
            gen = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch)
            order[epoch] = torch.randperm(n, generator=gen)
        idx = order[epoch][i * s.batch_size : (i + 1) * s.batch_size]
        gen = torch.Generator().manual_seed(s.seed * 1_000_003 + 7_919 * (step + 1))
        xb = normalize(augment(data.x_train[idx].to(device), gen))
        yb = data.y_train[idx].to(device)
        model.train()
        sync()
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        sync()
        extras["train_seconds"] += time.perf_counter() - t0
        extras["loss_sum"] += value
        return value

    def eval_fn(step: int) -> dict[str, Any]:
        record = {
            "epoch": step / steps_per_epoch,
            "train_loss": extras["loss_sum"] / steps_per_epoch if step else math.nan,
            "test_acc": _accuracy(model, data.x_test, data.y_test, device),
            "train_seconds": extras["train_seconds"],
        }
        diag = update_diagnostics(optimizer)  # BiostatisV6's gain h e and term sizes, else None
        if diag is not None:
            extras.setdefault("optimizer_trace", []).append({"step": step, **diag})
        extras["loss_sum"] = 0.0
        return record

    result = train_loop(
        step_fn=step_fn,
        total_steps=total,
        seed=s.seed,
        stateful={"model": model, "optimizer": optimizer},
        eval_fn=eval_fn,
        eval_every=steps_per_epoch,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=steps_per_epoch,
        extras=extras,
        log_every=steps_per_epoch if log is not None else 0,
        label=f"cifar10 resnet18/{s.optimizer}/lr={s.lr}/seed={s.seed}",
        log=log,
    )
    history = pd.DataFrame.from_records(result.history)
    summary = {
        "settings": {**vars(s), "optimizer_hyper": dict(s.optimizer_hyper)},
        "device": str(device),
        "n_params": sum(p.numel() for p in model.parameters()),
        "steps": total,
        "steps_done": result.steps_done,
        "diverged": result.diverged,
        "train_seconds": float(result.extras["train_seconds"]),
        "wall_seconds": result.wall_seconds,
        "optimizer_state_bytes": optimizer_state_bytes(optimizer),
    }
    if result.extras.get("optimizer_trace"):
        summary["optimizer_trace"] = result.extras["optimizer_trace"]
        summary["effective_step"] = summarise_trace(result.extras["optimizer_trace"])
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return history, summary, state
