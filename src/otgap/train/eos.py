"""Edge-of-Stability training (Appendix A.2): train one classifier while tracking sharpness.

One run is one (dataset, model, optimizer, lr, loss, seed). Full-batch optimizers (``gd``) take
steps on a fixed training subset (the first ``gd_train_subset`` samples, as Cohen et al. 2021);
minibatch optimizers take epochs over the whole training part, in an order drawn from a generator
seeded by (seed, epoch) so that a resumed run sees the same batches. Every ``eval_every`` steps the
run records losses, accuracies and the full-gradient norm; every ``eig_every`` steps the top-k
Hessian eigenvalues of the training loss on the first ``eig_subset`` training samples, warm-started
from the previous top eigenvector. For preconditioned optimizers (Adam, AdamW) the compared
quantity is lambda_1(P^-1 H) (``sharpness``) and the plain lambda_1(H) is kept as
``sharpness_raw``. ``eig_matvec`` counts the Hessian-vector products those measurements used (both
of them for preconditioned optimizers) and ``eig_converged`` says whether every one met ``eig_tol``
before ``eig_max_iter`` (both empty where nothing was measured); warm starts are guarded against
an eigenvalue overtaking the tracked one at the price of at least 12 products per measurement
(see ``otgap.curvature.lanczos``). For an MLP whose input is wider than ``eig_subset`` (the paper's
2352-feature PathMNIST MLP on 256 samples) the plain measurements use the exact input-layer
reduction of ``otgap.curvature.reduce`` (same values; ~3x cheaper products). ``n_snapshots`` evenly spaced parameter vectors (always the
initial and the final one) are kept for the loss-landscape stage.

Everything that must survive a restart (model, optimizer, warm-start vectors) lives in the training
loop's checkpoint and the snapshots in its append-only side file, so a preempted job resumes to the
same numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from otgap.data.classification import ClassificationData
from otgap.models.classifiers import CLASSIFIERS
from otgap.optim import OPTIMIZERS
from otgap.optim.memory import optimizer_state_bytes
from otgap.train.loop import SnapshotLog, train_loop

LOSSES = ("ce", "mse", "landau")
_EVAL_CHUNK = 4096


def mse_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0.5 ||f(x) - onehot(y)||^2, averaged over examples (Cohen et al.'s square loss)."""
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return 0.5 * (logits - onehot).pow(2).sum(dim=-1).mean()


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``ce`` (cross-entropy) or ``mse``, both averages over examples, or ``landau`` (seeds
    001/002, the seeds' alpha and gamma), which couples the samples of a batch: not separable."""
    if name == "landau":
        from otgap.models.landau import landau_loss

        return landau_loss
    if name == "ce":
        return F.cross_entropy
    if name == "mse":
        return mse_loss
    raise ValueError(f"unknown loss '{name}'; choose one of {LOSSES}")


@dataclass
class EosSettings:
    """One run's settings; ``steps`` counts updates of full-batch optimizers, ``epochs`` those of
    minibatch optimizers. ``eval_every``/``eig_every`` are steps, or ``"epoch"`` for one epoch."""

    model: str
    optimizer: str
    lr: float
    loss: str
    seed: int
    model_hyper: dict[str, Any] = field(default_factory=dict)
    optimizer_hyper: dict[str, Any] = field(default_factory=dict)
    steps: int = 1000
    epochs: int = 1
    batch_size: int = 128
    gd_train_subset: int | None = None
    eval_every: int | str = 1
    eig_every: int | str = 1
    eig_subset: int = 256
    eig_k: int = 1
    eig_tol: float = 1e-4
    eig_max_iter: int = 100
    n_snapshots: int = 11
    checkpoint_every: int | str = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EosSettings:
        """Build from a mapping (the rule's params), naming any unknown key."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"EoS settings: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(params))


@dataclass
class EosResult:
    history: pd.DataFrame
    snapshot_steps: np.ndarray
    snapshots: np.ndarray
    state_dict: dict[str, torch.Tensor]
    summary: dict[str, Any]


def _every(value: int | str, steps_per_epoch: int, key: str) -> int:
    if value == "epoch":
        return steps_per_epoch
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"EoS settings: {key} must be a non-negative integer or 'epoch', got {value!r}"
        )
    return value


def flat_params(model: nn.Module) -> torch.Tensor:
    """Trainable parameters in ``model.parameters()`` order, flattened into one float32 vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]).to(
        torch.float32
    )


def snapshot_schedule(total_steps: int, n_snapshots: int) -> list[int]:
    """``n_snapshots`` evenly spaced steps in ``[0, total_steps]``, both ends included (deduplicated
    when there are fewer steps than snapshots)."""
    if n_snapshots < 2:
        raise ValueError(f"n_snapshots must be >= 2 (initial and final), got {n_snapshots}")
    return sorted({int(round(s)) for s in np.linspace(0, total_steps, n_snapshots)})


@torch.no_grad()
def _evaluate(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    total, correct = 0.0, 0
    for i in range(0, len(x), _EVAL_CHUNK):
        out = model(x[i : i + _EVAL_CHUNK])
        yb = y[i : i + _EVAL_CHUNK]
        total += float(loss_fn(out, yb)) * len(yb)
        correct += int((out.argmax(dim=-1) == yb).sum())
    return total / len(x), correct / len(x)


def _full_gradient_norm(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    for i in range(0, len(x), _EVAL_CHUNK):
        yb = y[i : i + _EVAL_CHUNK]
        loss = loss_fn(model(x[i : i + _EVAL_CHUNK]), yb) * (len(yb) / len(x))
        for g, gi in zip(grads, torch.autograd.grad(loss, params), strict=True):
            g.add_(gi)
    return float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def history_columns(eig_k: int) -> list[str]:
    """Column order of ``history.csv``."""
    eigs = [f"eig_{i}" for i in range(2, eig_k + 1)]
    return [
        "step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc",
        "sharpness", "sharpness_raw", *eigs, "eig_matvec", "eig_converged", "threshold",
        "grad_norm", "diverged",
    ]  # fmt: skip


def train_eos(
    data: ClassificationData,
    settings: EosSettings,
    *,
    checkpoint_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    callback: Callable[[int], None] | None = None,
    identity: Mapping[str, Any] | str | None = None,
) -> EosResult:
    """Train one EoS run and return its history, snapshots, final weights and a summary.

    ``callback(step)`` is called after every update (progress reporting; tests use it to send a
    preemption signal). Raises ``otgap.train.Preempted`` after checkpointing on SIGTERM/SIGUSR1.
    """
    from otgap.curvature import hessian_eigenpairs
    from otgap.train.determinism import seed_everything

    s = settings
    loss_fn = loss_function(s.loss)
    spec = OPTIMIZERS[s.optimizer]
    spec.hyper(**s.optimizer_hyper)
    if s.eig_k < 1 or s.eig_subset < 1:
        raise ValueError(f"eig_k and eig_subset must be >= 1, got {s.eig_k}, {s.eig_subset}")

    x_train, y_train = data.x_train, data.y_train
    if spec.full_batch:
        if s.gd_train_subset:
            if s.gd_train_subset > len(x_train):
                raise ValueError(
                    f"gd_train_subset={s.gd_train_subset} exceeds the {len(x_train)} training "
                    f"samples of '{data.name}'"
                )
            x_train, y_train = x_train[: s.gd_train_subset], y_train[: s.gd_train_subset]
        steps_per_epoch, total_steps = 1, int(s.steps)
    else:
        if s.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {s.batch_size}")
        steps_per_epoch = math.ceil(len(x_train) / s.batch_size)
        total_steps = int(s.epochs) * steps_per_epoch
    eval_every = _every(s.eval_every, steps_per_epoch, "eval_every")
    eig_every = _every(s.eig_every, steps_per_epoch, "eig_every")
    checkpoint_every = _every(s.checkpoint_every, steps_per_epoch, "checkpoint_every")
    if eig_every and (not eval_every or eig_every % eval_every):
        raise ValueError(
            f"eig_every ({eig_every} steps) must be a multiple of eval_every ({eval_every} steps): "
            "sharpness is measured at evaluation steps"
        )
    x_eig, y_eig = x_train[: s.eig_subset], y_train[: s.eig_subset]

    # Build the model and optimizer right after seeding, so initial weights depend on the seed only.
    seed_everything(s.seed)
    model = CLASSIFIERS[s.model](data.input_shape, data.n_classes, **s.model_hyper)
    optimizer = spec.build(model.parameters(), s.lr, **s.optimizer_hyper)
    threshold = float(spec.threshold(s.lr, **s.optimizer_hyper))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    snap_at = set(snapshot_schedule(total_steps, s.n_snapshots))
    # train_seconds: forward + backward + step only (no evaluation, no sharpness), for the
    # optimizer cost ratios of the BiostatisV6 table; saved in checkpoints with the rest
    extras: dict[str, Any] = {"v0": None, "v0_raw": None, "train_seconds": 0.0}
    snapshot_log = SnapshotLog()  # beside the checkpoint, so the checkpoint's size stays constant

    batch_order: dict[int, torch.Tensor] = {}

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if spec.full_batch:
            return x_train, y_train
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in batch_order:
            batch_order.clear()
            gen = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch)
            batch_order[epoch] = torch.randperm(len(x_train), generator=gen)
        idx = batch_order[epoch][i * s.batch_size : (i + 1) * s.batch_size]
        return x_train[idx], y_train[idx]

    def step_fn(step: int) -> float:
        if step in snap_at:
            snapshot_log.add(step, flat_params(model))
        model.train()
        xb, yb = batch(step)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        value = float(loss.detach())
        if math.isfinite(value):  # a non-finite loss ends the run; keep the last weights
            loss.backward()
            optimizer.step()
        extras["train_seconds"] += time.perf_counter() - t0
        if callback is not None:
            callback(step + 1)
        return value

    def start_vector() -> torch.Tensor:
        gen = torch.Generator().manual_seed(s.seed)
        v = torch.randn(n_params, generator=gen)
        return v / v.norm()

    def eigenvalues(preconditioner, key: str, record: dict[str, Any]) -> list[float]:
        """Top ``eig_k`` values; adds the products used and the convergence flag to ``record``."""
        v0 = extras[key] if extras[key] is not None else start_vector()
        res = hessian_eigenpairs(
            model,
            loss_fn,
            x_eig,
            y_eig,
            k=s.eig_k,
            tol=s.eig_tol,
            max_iter=s.eig_max_iter,
            preconditioner=preconditioner,
            v0=v0,
            return_vectors=True,
        )
        extras[key] = res.vectors[0].detach().clone()
        record["eig_matvec"] = record.get("eig_matvec", 0) + res.n_matvec
        record["eig_converged"] = record.get("eig_converged", True) and bool(res.converged)
        return [float(v) for v in res.values]

    def eval_fn(step: int) -> dict[str, Any]:
        model.eval()
        train_loss, train_acc = _evaluate(model, loss_fn, x_train, y_train)
        test_loss, test_acc = _evaluate(model, loss_fn, data.x_test, data.y_test)
        finite = _params_finite(model) and math.isfinite(train_loss)
        record: dict[str, Any] = {
            "epoch": step / steps_per_epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "grad_norm": _full_gradient_norm(model, loss_fn, x_train, y_train)
            if finite
            else math.nan,
            "threshold": threshold,
        }
        eig_step = eig_every and (step % eig_every == 0 or step == total_steps)
        if eig_step and finite:
            raw = eigenvalues(None, "v0_raw", record)
            record["sharpness_raw"] = raw[0]
            if spec.preconditioned:
                p = spec.preconditioner(optimizer)
                compared = eigenvalues(p, "v0", record) if p is not None else [math.nan] * s.eig_k
            else:
                compared = raw
            record["sharpness"] = compared[0]
            for i, value in enumerate(compared[1:], start=2):
                record[f"eig_{i}"] = value
        model.train()
        return record

    result = train_loop(
        step_fn=step_fn,
        total_steps=total_steps,
        seed=s.seed,
        stateful={"model": model, "optimizer": optimizer},
        eval_fn=eval_fn,
        eval_every=eval_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        extras=extras,
        log_every=max(eval_every, 1) if log is not None else 0,
        label=f"eos {s.model}/{s.optimizer}/lr={s.lr}/{s.loss}/seed={s.seed}",
        log=log,
        identity=identity,
        snapshots=snapshot_log,
    )
    snapshots = snapshot_log.load()
    final_step = result.steps_done if not result.diverged else result.diverged_step - 1
    snapshots[final_step] = flat_params(model)
    steps = np.array(sorted(snapshots), dtype=np.int64)
    params = torch.stack([snapshots[int(k)] for k in steps]).numpy().astype(np.float32)

    history = pd.DataFrame.from_records(result.history)
    history = history.reindex(columns=history_columns(s.eig_k))
    history["diverged"] = history["diverged"].fillna(False).astype(bool)
    history["step"] = history["step"].astype(np.int64)
    history["eig_matvec"] = history["eig_matvec"].astype("Int64")  # <NA> where not measured
    history["eig_converged"] = history["eig_converged"].astype("boolean")
    summary = {
        "settings": asdict(s),
        "dataset": data.name,
        "lr": float(s.lr),
        "threshold": threshold,
        "diverged": result.diverged,
        "diverged_step": result.diverged_step,
        "steps": total_steps,
        "steps_done": result.steps_done,
        "steps_per_epoch": steps_per_epoch,
        "train_size": len(x_train),
        "n_params": n_params,
        "n_snapshots": len(steps),
        "resumed_from": result.resumed_from,
        "wall_seconds": result.wall_seconds,
        "train_seconds": float(result.extras.get("train_seconds", math.nan)),
        "optimizer_state_bytes": optimizer_state_bytes(optimizer),
        "full_batch": spec.full_batch,
        "preconditioned": spec.preconditioned,
    }
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return EosResult(history, steps, params, state, summary)


def write_outputs(
    result: EosResult,
    *,
    history: str | Path,
    snapshots: str | Path,
    model: str | Path,
    run_json: str | Path,
    provenance: Mapping[str, Any],
) -> None:
    """Write ``history.csv``, ``snapshots.npz``, ``model.pt`` and the ``run.json`` sidecar atomically."""
    from otgap.io import write_csv, write_json, write_npz, write_torch

    write_csv(history, result.history)
    write_npz(
        snapshots,
        steps=result.snapshot_steps,
        params=result.snapshots,
        init=result.snapshots[0],
        final=result.snapshots[-1],
    )
    write_torch(model, result.state_dict)
    write_json(run_json, {**result.summary, "provenance": dict(provenance)})
