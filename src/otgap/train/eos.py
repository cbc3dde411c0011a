"""Edge-of-Stability training (Appendix A.2): train one classifier while tracking sharpness.

One run is one (dataset, model, optimizer, lr, loss, seed). Full-batch optimizers (``gd``,
``gd_momentum``, ``adam_fb``) take steps on a fixed training subset (``gd_train_subset`` samples,
the first ones as Cohen et al. 2021, or a seeded stratified draw with ``subset="stratified"``, see
``otgap.train.subsets``), and their sharpness is measured on that same subset: the loss they
descend. Minibatch optimizers take epochs over the whole training part, in an order drawn from a
generator seeded by (seed, epoch) so that a resumed run sees the same batches, and their sharpness
is measured on ``eig_subset`` samples. Every ``eval_every`` steps the run records losses,
accuracies and the full-gradient norm; every ``eig_every`` steps the top-k Hessian eigenvalues of
the training loss (Lanczos warm-started from the previous top eigenvector, or ``eig_method=
"power"``: the original code's cold-started power iteration). For preconditioned optimizers
(Adam, AdamW) the compared quantity is lambda_1(P^-1 H) (``sharpness``) with P the preconditioner
of the *next* update (``otgap.curvature.adam_next_preconditioner``), and the plain lambda_1(H) is
kept as ``sharpness_raw``. ``eig_matvec`` counts the Hessian-vector products those measurements
used (both of them for preconditioned optimizers) and ``eig_converged`` says whether every one met
``eig_tol`` before ``eig_max_iter`` (both empty where nothing was measured); Lanczos warm starts
are guarded against an eigenvalue overtaking the tracked one at the price of at least 12 products
per measurement (see ``otgap.curvature.lanczos``). For an MLP whose input is wider than the
measured subset (the paper's 2352-feature PathMNIST MLP on 256 samples) the plain measurements use
the exact input-layer reduction of ``otgap.curvature.reduce`` (same values; ~3x cheaper products).
For minibatch optimizers whose stability is decided by it (``sgd``, ``momentum``: the spec's
``batch_sharpness``), ``batch_sharpness_batches`` = K > 0 also records at every sharpness
measurement the batch sharpness (mean over the K batches the optimizer draws next of
g_B^T H_B g_B / g_B^T g_B, :func:`otgap.curvature.batch_sharpness_stats`) and its standard error,
columns ``batch_sharpness`` and ``batch_sharpness_se``, compared with the same threshold.
``n_snapshots`` evenly spaced parameter vectors (always the initial and the final one) are kept for
the loss-landscape stage.

Device: ``device="auto"`` trains on CUDA when the job sees a GPU; model, data, gradients and
Hessian-vector products then live there, while snapshots, warm-start vectors and the returned
weights are CPU float32. The model is initialised on the CPU from the seed and moved, so every
device starts from the same weights. ``deterministic`` (default) asks torch for deterministic
kernels and sets ``CUBLAS_WORKSPACE_CONFIG`` before CUDA is first used.

Everything that must survive a restart (model, optimizer, warm-start vectors) lives in the training
loop's checkpoint and the snapshots in its append-only side file (``otgap.train.loop.SnapshotLog``),
so a preempted job resumes to the same numbers while the checkpoint's size stays constant. The loop reads in
phases: :meth:`_EosJob.batch` (which samples), :meth:`_EosJob.step` (one update),
:meth:`_EosJob.measure` (sharpness) and :meth:`_EosJob.record` (one history row).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from otgap.data.classification import ClassificationData
from otgap.losses import LOSSES
from otgap.losses.base import Loss
from otgap.losses.classification import mse_loss
from otgap.models.classifiers import CLASSIFIERS
from otgap.optim import OPTIMIZERS
from otgap.optim.biostatis import summarise_trace, update_diagnostics
from otgap.optim.memory import optimizer_state_bytes
from otgap.train.loop import SnapshotLog, timing_marks, train_loop
from otgap.train.subsets import class_counts, subset_indices

__all__ = [
    "EIG_METHODS",
    "EosResult",
    "EosSettings",
    "flat_params",
    "history_columns",
    "loss_function",
    "mse_loss",
    "resolve_device",
    "run_subsets",
    "snapshot_schedule",
    "train_eos",
    "write_outputs",
]

EIG_METHODS = ("lanczos", "power")
_EVAL_CHUNK = 4096


def loss_function(name: str) -> Loss:
    """The loss registered as ``name`` in ``otgap.losses.LOSSES`` (``ce``, ``mse``, ...)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss '{name}'; choose one of {sorted(LOSSES)}") from None


@dataclass
class EosSettings:
    """One run's settings; ``steps`` counts updates of full-batch optimizers, ``epochs`` those of
    minibatch optimizers. ``eval_every``/``eig_every`` are steps, or ``"epoch"`` for one epoch.
    ``eig_subset`` is the sharpness subset of minibatch runs; full-batch runs measure on their
    training subset (None, or the same number)."""

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
    eig_subset: int | None = 256
    eig_k: int = 1
    eig_tol: float = 1e-4
    eig_max_iter: int = 100
    eig_method: str = "lanczos"
    batch_sharpness_batches: int = 0
    subset: str = "first"
    subset_seed: int = 0
    n_snapshots: int = 11
    checkpoint_every: int | str = 0
    device: str = "cpu"
    deterministic: bool = True

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


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when visible, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"EoS settings: device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"EoS settings: device {name!r} asked for, but this job sees no CUDA GPU; "
            "use device: auto or cpu, or request a GPU for the eos stages (resources.*.gpu)"
        )
    return torch.device(name)


def configure_determinism(deterministic: bool) -> None:
    """Deterministic kernels (and cuBLAS's fixed workspace) on, or every such switch off."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False


def run_subsets(
    labels: torch.Tensor, n_classes: int, settings: EosSettings, full_batch: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into the training part: (samples trained on, samples sharpness is measured on).

    Full-batch runs train on ``gd_train_subset`` samples (all when None) and measure sharpness on
    exactly those; an ``eig_subset`` that differs is an error. Minibatch runs train on every
    sample and measure on ``eig_subset`` samples chosen by the same rule (``settings.subset``).
    """
    s = settings
    choose = functools.partial(
        subset_indices, labels, mode=s.subset, seed=s.subset_seed, n_classes=n_classes
    )
    if full_batch:
        train = choose(s.gd_train_subset, what="gd_train_subset")
        if s.eig_subset is not None and s.eig_subset != len(train):
            raise ValueError(
                f"eig_subset={s.eig_subset} but the full-batch optimizer '{s.optimizer}' trains "
                f"on {len(train)} samples: its sharpness must be measured on the loss it descends; "
                "leave eig_subset unset for full-batch entries (or equal to gd_train_subset)"
            )
        return train, train
    train = torch.arange(len(labels))
    if s.eig_subset is None:
        return train, train
    return train, choose(s.eig_subset, what="eig_subset")


def _every(value: int | str, steps_per_epoch: int, key: str) -> int:
    if value == "epoch":
        return steps_per_epoch
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"EoS settings: {key} must be a non-negative integer or 'epoch', got {value!r}"
        )
    return value


def flat_params(model: nn.Module) -> torch.Tensor:
    """Trainable parameters in ``model.parameters()`` order, as one float32 CPU vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]).to(
        "cpu", torch.float32
    )


def snapshot_schedule(total_steps: int, n_snapshots: int) -> list[int]:
    """``n_snapshots`` evenly spaced steps in ``[0, total_steps]``, both ends included (deduplicated
    when there are fewer steps than snapshots)."""
    if n_snapshots < 2:
        raise ValueError(f"n_snapshots must be >= 2 (initial and final), got {n_snapshots}")
    return sorted({int(round(s)) for s in np.linspace(0, total_steps, n_snapshots)})


@torch.no_grad()
def _evaluate(model: nn.Module, loss_fn: Loss, x: torch.Tensor, y: torch.Tensor):
    total, correct = 0.0, 0
    chunk = loss_fn.chunk_size(_EVAL_CHUNK, len(x))
    for i in range(0, len(x), chunk):
        out = model(x[i : i + chunk])
        yb = y[i : i + chunk]
        total += float(loss_fn(out, yb)) * len(yb)
        correct += int((out.argmax(dim=-1) == yb).sum())
    return total / len(x), correct / len(x)


def _gradients(model: nn.Module, loss_fn: Loss, x: torch.Tensor, y: torch.Tensor):
    """Gradient of the mean loss over ``x`` (chunked when the loss is separable)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    chunk = loss_fn.chunk_size(_EVAL_CHUNK, len(x))
    for i in range(0, len(x), chunk):
        yb = y[i : i + chunk]
        loss = loss_fn(model(x[i : i + chunk]), yb) * (len(yb) / len(x))
        for g, gi in zip(grads, torch.autograd.grad(loss, params), strict=True):
            g.add_(gi)
    return grads


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def history_columns(eig_k: int) -> list[str]:
    """Column order of ``history.csv``."""
    eigs = [f"eig_{i}" for i in range(2, eig_k + 1)]
    return [
        "step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc",
        "sharpness", "sharpness_raw", *eigs, "eig_matvec", "eig_converged", "threshold",
        "batch_sharpness", "batch_sharpness_se", "grad_norm", "diverged",
    ]  # fmt: skip


class _EosJob:
    """One run's state and its phases; :func:`train_eos` wires them into the training loop."""

    def __init__(self, data: ClassificationData, s: EosSettings, device: torch.device) -> None:
        from otgap.train.determinism import seed_everything

        self.s, self.device = s, device
        self.loss_fn = loss_function(s.loss)
        self.spec = OPTIMIZERS[s.optimizer]
        self.spec.hyper(**s.optimizer_hyper)
        if s.eig_k < 1 or (s.eig_subset is not None and s.eig_subset < 1):
            raise ValueError(f"eig_k and eig_subset must be >= 1, got {s.eig_k}, {s.eig_subset}")
        if s.eig_method not in EIG_METHODS:
            raise ValueError(f"eig_method must be one of {EIG_METHODS}, got {s.eig_method!r}")
        k = s.batch_sharpness_batches
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"batch_sharpness_batches must be an integer >= 0, got {k!r}")
        if k and not (self.spec.batch_sharpness and not self.spec.full_batch):
            raise ValueError(
                f"batch_sharpness_batches={k} for optimizer '{s.optimizer}': batch sharpness is "
                "measured for minibatch optimizers whose threshold is about the plain Hessian "
                "(sgd, momentum); set it to 0 for this entry"
            )
        train_idx, eig_idx = run_subsets(data.y_train, data.n_classes, s, self.spec.full_batch)
        self.train_counts = class_counts(data.y_train[train_idx], data.n_classes)
        self.eig_counts = class_counts(data.y_train[eig_idx], data.n_classes)
        self.x_train, self.y_train = (t[train_idx].to(device) for t in (data.x_train, data.y_train))
        self.x_eig, self.y_eig = (t[eig_idx].to(device) for t in (data.x_train, data.y_train))
        self.x_test, self.y_test = data.x_test.to(device), data.y_test.to(device)

        if self.spec.full_batch:
            self.steps_per_epoch, self.total_steps = 1, int(s.steps)
        else:
            if s.batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {s.batch_size}")
            self.steps_per_epoch = math.ceil(len(self.x_train) / s.batch_size)
            self.total_steps = int(s.epochs) * self.steps_per_epoch
        self.eval_every = _every(s.eval_every, self.steps_per_epoch, "eval_every")
        self.eig_every = _every(s.eig_every, self.steps_per_epoch, "eig_every")
        self.checkpoint_every = _every(s.checkpoint_every, self.steps_per_epoch, "checkpoint_every")
        if self.eig_every and (not self.eval_every or self.eig_every % self.eval_every):
            raise ValueError(
                f"eig_every ({self.eig_every} steps) must be a multiple of eval_every "
                f"({self.eval_every} steps): sharpness is measured at evaluation steps"
            )

        # Build the model and optimizer right after seeding, so initial weights depend on the
        # seed only (built on the CPU, then moved: every device starts from the same weights).
        seed_everything(s.seed, deterministic=s.deterministic)
        model = CLASSIFIERS[s.model](data.input_shape, data.n_classes, **s.model_hyper)
        self.model = model.to(device)
        self.optimizer = self.spec.build(self.model.parameters(), s.lr, **s.optimizer_hyper)
        self.threshold = float(self.spec.threshold(s.lr, **s.optimizer_hyper))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_params = sum(p.numel() for p in self.params)
        self.snap_at = set(snapshot_schedule(self.total_steps, s.n_snapshots))
        # train_seconds: forward + backward + step only (no evaluation, no sharpness), for the
        # optimizer cost ratios of the BiostatisV6 table; saved in checkpoints with the rest
        self.extras: dict[str, Any] = {"v0": None, "v0_raw": None, "train_seconds": 0.0}
        self.snapshot_log = SnapshotLog()  # beside the checkpoint: constant checkpoint size
        self._order: dict[int, torch.Tensor] = {}
        self.callback: Callable[[int], None] | None = None

    # -- phase 1: which samples the update at ``step`` sees ------------------------------------
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.spec.full_batch:
            return self.x_train, self.y_train
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch not in self._order:
            self._order.clear()
            gen = torch.Generator().manual_seed(self.s.seed * 1_000_003 + epoch)
            self._order[epoch] = torch.randperm(len(self.x_train), generator=gen)
        bs = self.s.batch_size
        idx = self._order[epoch][i * bs : (i + 1) * bs].to(self.device)
        return self.x_train[idx], self.y_train[idx]

    # -- phase 2: one update ---------------------------------------------------------------------
    def _clock(self) -> float:
        """Wall time after the device's queued work (CUDA kernels run asynchronously)."""
        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def step(self, step: int) -> float:
        if step in self.snap_at:
            self.snapshot_log.add(step, flat_params(self.model))
        self.model.train()
        xb, yb = self.batch(step)
        t0 = self._clock()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), yb)
        value = float(loss.detach())
        if math.isfinite(value):  # a non-finite loss ends the run; keep the last weights
            loss.backward()
            self.optimizer.step()
        self.extras["train_seconds"] += self._clock() - t0
        if self.callback is not None:
            self.callback(step + 1)
        return value

    # -- phase 3: sharpness ------------------------------------------------------------------------
    def _start_vector(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.s.seed)
        v = torch.randn(self.n_params, generator=gen)
        return v / v.norm()

    def _eigenvalues(self, preconditioner, key: str, record: dict[str, Any]) -> list[float]:
        """Top ``eig_k`` values; adds the products used and the convergence flag to ``record``.

        Lanczos warm-starts from the previous measurement's vector; power iteration starts from
        the seed's fixed random vector every time (as the original code's did)."""
        from otgap.curvature import hessian_eigenpairs

        s = self.s
        warm = s.eig_method == "lanczos" and self.extras[key] is not None
        res = hessian_eigenpairs(
            self.model,
            self.loss_fn,
            self.x_eig,
            self.y_eig,
            k=s.eig_k,
            tol=s.eig_tol,
            max_iter=s.eig_max_iter,
            preconditioner=preconditioner,
            v0=self.extras[key] if warm else self._start_vector(),
            return_vectors=True,
            solver=s.eig_method,
        )
        self.extras[key] = res.vectors[0].detach().to("cpu").clone()
        record["eig_matvec"] = record.get("eig_matvec", 0) + res.n_matvec
        record["eig_converged"] = record.get("eig_converged", True) and bool(res.converged)
        return [float(v) for v in res.values]

    def _next_gradients(self, step: int) -> list[torch.Tensor]:
        """Gradients the update at ``step`` will see (its batch, train mode), with no side
        effect on buffers (BatchNorm statistics) or random number generators."""
        buffers = {k: b.detach().clone() for k, b in self.model.named_buffers()}
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
        self.model.train()
        xb, yb = self.batch(step)
        grads = _gradients(self.model, self.loss_fn, xb, yb)
        with torch.no_grad():
            for k, b in self.model.named_buffers():
                b.copy_(buffers[k])
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        return grads

    def measure(self, step: int, record: dict[str, Any]) -> None:
        raw = self._eigenvalues(None, "v0_raw", record)
        record["sharpness_raw"] = raw[0]
        compared = raw
        if self.spec.preconditioned:
            p = self.spec.preconditioner(self.optimizer, self.params, self._next_gradients(step))
            compared = (
                self._eigenvalues(p, "v0", record) if p is not None else [math.nan] * self.s.eig_k
            )
        record["sharpness"] = compared[0]
        for i, value in enumerate(compared[1:], start=2):
            record[f"eig_{i}"] = value
        if self.s.batch_sharpness_batches:
            self._batch_sharpness(step, record)

    def _batch_sharpness(self, step: int, record: dict[str, Any]) -> None:
        """Batch sharpness on the ``batch_sharpness_batches`` batches the optimizer draws next
        (steps ``step``, ``step + 1``, ...: the same sampling, no random number drawn)."""
        from otgap.curvature import batch_sharpness_stats

        k = self.s.batch_sharpness_batches
        res = batch_sharpness_stats(
            self.model, self.loss_fn, (self.batch(step + i) for i in range(k))
        )
        record["batch_sharpness"] = res.mean
        record["batch_sharpness_se"] = res.stderr

    # -- phase 4: one history row --------------------------------------------------------------
    def record(self, step: int) -> dict[str, Any]:
        model, loss_fn = self.model, self.loss_fn
        diag = update_diagnostics(self.optimizer)  # BiostatisV6's gain and terms, else None
        if diag is not None:
            self.extras.setdefault("optimizer_trace", []).append({"step": step, **diag})
        model.eval()
        train_loss, train_acc = _evaluate(model, loss_fn, self.x_train, self.y_train)
        test_loss, test_acc = _evaluate(model, loss_fn, self.x_test, self.y_test)
        finite = _params_finite(model) and math.isfinite(train_loss)
        grad_norm = math.nan
        if finite:
            grads = _gradients(model, loss_fn, self.x_train, self.y_train)
            grad_norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
        row: dict[str, Any] = {
            "epoch": step / self.steps_per_epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "grad_norm": grad_norm,
            "threshold": self.threshold,
        }
        every = self.eig_every
        if every and (step % every == 0 or step == self.total_steps) and finite:
            self.measure(step, row)
        model.train()
        return row


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
    from otgap.train.determinism import seed_everything

    s = settings
    device = resolve_device(s.device)
    configure_determinism(s.deterministic)
    job = _EosJob(data, s, device)
    job.callback = callback
    if log is not None:
        log(
            f"device {device}; training subset {len(job.x_train)} samples, class counts "
            f"{job.train_counts}; sharpness subset {len(job.x_eig)} samples, class counts "
            f"{job.eig_counts}"
        )

    result = train_loop(
        step_fn=job.step,
        total_steps=job.total_steps,
        seed=s.seed,
        stateful={"model": job.model, "optimizer": job.optimizer},
        eval_fn=job.record,
        eval_every=job.eval_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=job.checkpoint_every,
        extras=job.extras,
        log_every=max(job.eval_every, 1) if log is not None else 0,
        label=f"eos {s.model}/{s.optimizer}/lr={s.lr}/{s.loss}/seed={s.seed}",
        log=log,
        seed_fn=functools.partial(seed_everything, deterministic=s.deterministic),
        identity=identity,
        snapshots=job.snapshot_log,
    )
    return _finish(job, result, data)


def _finish(job: _EosJob, result, data: ClassificationData) -> EosResult:
    s = job.s
    snapshots = job.snapshot_log.load()
    final_step = result.steps_done if not result.diverged else result.diverged_step - 1
    snapshots[final_step] = flat_params(job.model)
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
        "threshold": job.threshold,
        "diverged": result.diverged,
        "diverged_step": result.diverged_step,
        "steps": job.total_steps,
        "steps_done": result.steps_done,
        "steps_per_epoch": job.steps_per_epoch,
        "train_size": len(job.x_train),
        "eig_size": len(job.x_eig),
        "train_class_counts": job.train_counts,
        "eig_class_counts": job.eig_counts,
        "n_params": job.n_params,
        "n_snapshots": len(steps),
        "resumed_from": result.resumed_from,
        "wall_seconds": result.wall_seconds,
        "loop_marks": timing_marks(result.marks),  # (step, loop seconds) after evaluations
        "train_seconds": float(result.extras.get("train_seconds", math.nan)),
        "optimizer_state_bytes": optimizer_state_bytes(job.optimizer),
        "full_batch": job.spec.full_batch,
        "preconditioned": job.spec.preconditioned,
        "device": str(job.device),
        "deterministic": bool(s.deterministic),
    }
    trace = result.extras.get("optimizer_trace")
    if trace:  # BiostatisV6: per-evaluation gain h e and term sizes, and their run summary
        summary["optimizer_trace"] = trace
        summary["effective_step"] = summarise_trace(trace)
    state = {k: v.detach().to("cpu").clone() for k, v in job.model.state_dict().items()}
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
