"""All seeds of one (system, condition, model) cell trained as one batched computation.

The seeds' models are built exactly as ``otgap.train.sequence.train_seed`` builds them (each under
``seed_everything(seed)``, then ``prepare`` on that seed's own training split), and their
parameters and buffers are stacked along a leading seed axis (``torch.func.stack_module_state``).
One training step evaluates every seed's loss on that seed's own minibatch with
``torch.func.functional_call`` under ``torch.func.vmap`` over (parameters, buffers, data); the seeds'
losses are independent, so one backward pass of their sum gives each seed its own gradient.

Per seed, everything ``fit_sequence_model`` does is kept:

- minibatches: the same permutation generator, seeded ``seed * 1_000_003 + epoch``;
- the objective (multi-step with its curriculum, one-step, or the oracle's vector-field
  regression); the batched losses are masked means (vmap has no boolean indexing), equal to the
  one-seed losses up to the order of summation;
- gradient-norm clipping with the seed's own norm, then Adam with ``torch.optim.Adam``'s formula
  (weight decay included) and a per-seed learning rate driven by one ``ReduceLROnPlateau`` per
  seed;
- evaluation, early stopping and best-validation weights per seed. A stopped (or diverged) seed is
  frozen: its parameters, Adam moments and step count are no longer updated (Adam would move a
  parameter even with a zero gradient), while the others go on; it also leaves the computation
  (only the running seeds are evaluated and differentiated).

The oracle's loss needs the field at the observed points only; their number differs from seed to
seed, so each seed's points are packed and padded to the largest count (a mask drops the padding).
LSTM and GRU cells have no batching rule for their fused kernels: under vmap the models write the
same equations out (``otgap.models.sequence.rnn_cell``).

Time per step: on one CPU thread at paper size the matrix products already keep the core busy, so
batching saves per-operation overhead only (``benchmarks/fhn_batched.py`` measures it; docs/benchmarks.md
has the numbers). ``LoopResult.wall_seconds`` of a batched seed is its share (1/S) of the cell's
loop time, ``extras["cell_wall_seconds"]`` the whole.

Tolerance: the batched computation sums in another order than the one-seed run, so the results
agree to float rounding (``tests/test_train_batched.py`` states the tolerance), not bitwise.

Adding a seed does not retrain the others: each trained seed's final model, history and loop
result are kept in its checkpoint directory (``finished.pt``, beside the resume checkpoint, kept
after the job) under the seed's own job identity (settings and code, not the list of seeds); a later
job whose seed has the same identity reuses it and trains only the seeds it lacks. A file of
another identity is ignored (and replaced once that seed is trained again).

A model that cannot run under vmap (data-dependent Python control flow such as the Neural ODE's
``max_step`` or a torchdiffeq solver) is detected by a trial step before training and trained seed
by seed with ``train_seed`` instead; the log says why. Baselines have nothing to train.

Checkpoints: the whole cell is one checkpoint (``checkpoint.pt`` in ``checkpoint_dir``) written
with ``otgap.train.loop``'s format and job identity: a checkpoint of another identity (other
settings, seeds or code) is discarded, never resumed; SIGTERM/SIGUSR1 write a checkpoint and raise
``Preempted`` as the one-seed loop does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from otgap.models.sequence import SequenceModel, build_sequence_model, check_inputs
from otgap.train.determinism import seed_everything
from otgap.train.loop import (
    CHECKPOINT_NAME,
    LoopResult,
    Preempted,
    StaleCheckpoint,
    _SignalFlag,
    identity_digest,
    load_checkpoint,
    normalise_identity,
    save_checkpoint,
)
from otgap.train.sequence import (
    FitConfig,
    curriculum_horizon,
    patience_exhausted,
    ramp_epochs,
    split_tensors,
    train_seed,
)

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as fit_sequence_model uses them
ADAM_EPS = 1e-8


@dataclass
class SeedRun:
    """One seed's outcome: its trained model, the loop result (None for a baseline), and whether
    it was trained batched with the cell's other seeds."""

    seed: int
    model: SequenceModel
    result: LoopResult | None
    batched: bool
    reused: bool = False


FINISHED_NAME = "finished.pt"
FINISHED_FORMAT = 1


def save_finished(ckpt_dir: str | Path | None, identity, run: SeedRun) -> None:
    """Keep a trained seed's outcome for reuse (nothing without a directory or identity)."""
    if ckpt_dir is None or identity is None:
        return
    from otgap.io import ensure_writable_dir, write_torch

    identity = normalise_identity(identity)
    res = run.result
    payload = {
        "format": FINISHED_FORMAT,
        "identity": identity,
        "identity_digest": identity_digest(identity),
        "state_dict": run.model.state_dict(),
        "batched": run.batched,
        "result": None if res is None else {
            "history": res.history, "steps_done": res.steps_done, "diverged": res.diverged,
            "diverged_step": res.diverged_step, "resumed_from": res.resumed_from,
            "extras": res.extras, "wall_seconds": res.wall_seconds,
        },
    }  # fmt: skip
    write_torch(ensure_writable_dir(ckpt_dir) / FINISHED_NAME, payload)


def load_finished(ckpt_dir, identity, name: str, model_kwargs, seed: int) -> SeedRun | None:
    """The seed's kept outcome if one of the same identity exists and loads, else None."""
    if ckpt_dir is None or identity is None:
        return None
    path = Path(ckpt_dir) / FINISHED_NAME
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if payload.get("format") != FINISHED_FORMAT:
            return None
        if payload.get("identity_digest") != identity_digest(normalise_identity(identity)):
            return None
        model = build_sequence_model(name, **dict(model_kwargs))
        model.load_state_dict(payload["state_dict"])
    except Exception:  # noqa: BLE001 - unreadable or unfit: train the seed again
        return None
    res = payload["result"]
    result = None if res is None else LoopResult(**res)
    return SeedRun(int(seed), model, result, bool(payload["batched"]), reused=True)


class _Objective(nn.Module):
    """The training loss of one seed as a module call, so that ``functional_call`` can swap in
    that seed's parameters (vmap has no boolean indexing: masked means)."""

    def __init__(self, model: SequenceModel, kind: str, n_context: int | None) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        self.n_context = n_context

    def forward(self, t, y, obs, target, horizon: int) -> torch.Tensor:
        if self.kind == "vector_field":  # observed points packed per seed (``_pack_points``)
            dtype = self.model._dtype()
            pred = self.model.vector_field(t.to(dtype), y.to(dtype))
            sq = (pred - target.to(dtype)).pow(2)
            keep = obs.unsqueeze(-1)
            zero = torch.zeros((), dtype=dtype)
            return torch.where(keep, sq, zero).sum() / (obs.sum() * y.shape[-1])
        if self.kind == "one_step":
            y_hat = self.model(t, y, obs)
            mask = obs.clone()
            mask[:, 0] = False
        else:  # multi_step
            n_context = int(self.n_context)
            length = n_context + horizon
            t, y, obs = t[:, :length], y[:, :length], obs[:, :length]
            y_hat = self.model(t, y, obs, forecast_from=min(n_context, length))
            cols = torch.arange(length, device=obs.device)
            mask = (obs | (cols >= n_context)) & (cols >= 1)
        keep = mask.unsqueeze(-1)
        zero = torch.zeros((), dtype=y_hat.dtype)
        target = torch.where(keep, y, torch.zeros((), dtype=y.dtype)).to(y_hat.dtype)
        sq = torch.where(keep, (y_hat - target).pow(2), zero)
        return sq.sum() / (mask.sum() * y_hat.shape[-1])


def _pack_points(t, y, obs, target) -> tuple:
    """The observed points of each seed's sequences (S, n, T[, D]) in row-major order, padded to
    the largest count: times (S, K) float64, states (S, K, D), mask (S, K), true field (S, K, D)."""
    counts = obs.reshape(obs.shape[0], -1).sum(dim=1)
    k = max(int(counts.max()), 1)
    d = y.shape[-1]
    out_t = t.new_zeros(t.shape[0], k)
    out_y = y.new_zeros(y.shape[0], k, d)
    out_g = target.new_zeros(target.shape[0], k, d)
    keep = torch.zeros(obs.shape[0], k, dtype=torch.bool, device=obs.device)
    for s in range(obs.shape[0]):
        m, c = obs[s], int(counts[s])
        out_t[s, :c], out_y[s, :c], out_g[s, :c] = t[s][m], y[s][m], target[s][m]
        keep[s, :c] = True
    return out_t, out_y, keep, out_g


def _objective_kind(model: SequenceModel, cfg: FitConfig) -> str:
    if model.fit_target == "vector_field":
        return "vector_field"
    if model.fit_target == "one_step":
        return "one_step" if cfg.objective == "one_step" else "multi_step"
    raise ValueError(f"unknown fit_target '{model.fit_target}' of {type(model).__name__}")


def _stack_splits(datas: Sequence[Mapping[str, np.ndarray]], split: str, device) -> tuple:
    parts = [split_tensors(d, split) for d in datas]
    shapes = {tuple(tuple(x.shape) for x in p) for p in parts}
    if len(shapes) != 1:
        raise ValueError(f"the seeds' '{split}' splits differ in shape: {sorted(shapes)}")
    return tuple(torch.stack([p[k] for p in parts]).to(device) for k in range(3))


class _CellState:
    """Everything of the cell that a checkpoint must restore (state_dict/load_state_dict)."""

    def __init__(self, tensors: dict[str, Any], schedulers: list) -> None:
        self.tensors = tensors
        self.schedulers = schedulers  # (dummy optimizer, ReduceLROnPlateau) per seed, or []

    def state_dict(self) -> dict[str, Any]:
        return {
            "tensors": self.tensors,
            "schedulers": [
                {"opt_lr": opt.param_groups[0]["lr"], "sched": sched.state_dict()}
                for opt, sched in self.schedulers
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        new = state["tensors"]
        if set(new) != set(self.tensors):
            raise KeyError(f"cell state keys {sorted(new)} != {sorted(self.tensors)}")
        for key, old in self.tensors.items():
            _load_into(old, new[key], key)
        if len(state["schedulers"]) != len(self.schedulers):
            raise ValueError("the checkpoint has another number of seeds")
        for (opt, sched), saved in zip(self.schedulers, state["schedulers"], strict=True):
            sched.load_state_dict(saved["sched"])
            opt.param_groups[0]["lr"] = saved["opt_lr"]


def _load_into(old: Any, new: Any, key: str) -> None:
    if isinstance(old, dict):
        if set(old) != set(new):
            raise KeyError(f"'{key}' has keys {sorted(new)}, expected {sorted(old)}")
        for k in old:
            _load_into(old[k], new[k], f"{key}.{k}")
        return
    if old.shape != new.shape or old.dtype != new.dtype:
        raise ValueError(
            f"'{key}': {tuple(new.shape)} {new.dtype} != {tuple(old.shape)} {old.dtype}"
        )
    with torch.no_grad():
        old.copy_(new)


def _per_seed(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(S,) values shaped to broadcast against a stacked tensor ``like`` (S, ...)."""
    return x.reshape((-1,) + (1,) * (like.dim() - 1)).to(like.dtype)


def build_seed_models(
    name: str, model_kwargs: Mapping[str, Any], seeds: Sequence[int]
) -> list[SequenceModel]:
    """Each seed's model built as ``train_seed`` builds it (under ``seed_everything(seed)``)."""
    models = []
    for seed in seeds:
        seed_everything(int(seed))
        models.append(build_sequence_model(name, **dict(model_kwargs)))
    return models


def train_seeds(
    name: str,
    model_kwargs: Mapping[str, Any],
    datas: Sequence[Mapping[str, np.ndarray]],
    cfg: FitConfig,
    seeds: Sequence[int],
    *,
    true_field: Callable | None = None,
    checkpoint_dir: str | Path | None = None,
    seed_checkpoint_dirs: Sequence[str | Path | None] | None = None,
    identity: Mapping[str, Any] | str | None = None,
    seed_identities: Sequence[Mapping[str, Any] | str | None] | None = None,
    log: Callable[[str], None] | None = None,
    label: str = "fhn",
    device: str | torch.device = "cpu",
) -> list[SeedRun]:
    """Train model ``name`` for every seed in ``seeds`` (dataset ``datas[i]`` for ``seeds[i]``)
    as one batched computation; a model that cannot run under vmap falls back to ``train_seed``
    per seed (with ``seed_checkpoint_dirs``/``seed_identities``), which the log says.

    ``checkpoint_dir``/``identity``: the cell's checkpoint and its job identity (include the
    seeds in it); ``seed_identities`` must not contain the list of seeds (they key each seed's
    finished result, reused by a later job with more seeds). Returns one ``SeedRun`` per seed, in
    the order of ``seeds``.
    """
    log = log or (lambda msg: print(msg, flush=True))
    seeds = [int(s) for s in seeds]
    if len(datas) != len(seeds) or not seeds:
        raise ValueError(f"need one dataset per seed and >= 1 seed; got {len(datas)} for {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    device = torch.device(device)
    dirs = list(seed_checkpoint_dirs or [None] * len(seeds))
    ids = list(seed_identities or [None] * len(seeds))
    if len(dirs) != len(seeds) or len(ids) != len(seeds):
        raise ValueError("need one seed checkpoint directory and identity per seed")
    reused: dict[int, SeedRun] = {}
    for seed, ckpt, ident in zip(seeds, dirs, ids, strict=True):
        run = load_finished(ckpt, ident, name, model_kwargs, seed)
        if run is not None:
            reused[seed] = run
    if reused:
        log(f"[{label}] seeds {sorted(reused)} reused from their finished results (same identity)")
    todo = [i for i, seed in enumerate(seeds) if seed not in reused]
    if todo:
        # the cell's checkpoint belongs to this job and to the seeds it trains
        trained = [seeds[i] for i in todo]
        cell_id = (
            None if identity is None else {"job": normalise_identity(identity), "seeds": trained}
        )
        fresh = _train_seeds(
            name, model_kwargs, [datas[i] for i in todo], cfg, trained,
            true_field=true_field, checkpoint_dir=checkpoint_dir,
            seed_checkpoint_dirs=[dirs[i] for i in todo], identity=cell_id,
            seed_identities=[ids[i] for i in todo], log=log, label=label, device=device,
        )  # fmt: skip
        for i, run in zip(todo, fresh, strict=True):
            save_finished(dirs[i], ids[i], run)
            reused[seeds[i]] = run
    return [reused[seed] for seed in seeds]


def _train_seeds(
    name, model_kwargs, datas, cfg, seeds, *, true_field, checkpoint_dir, seed_checkpoint_dirs,
    identity, seed_identities, log, label, device,
) -> list[SeedRun]:  # fmt: skip
    models = build_seed_models(name, model_kwargs, seeds)
    if models[0].is_baseline:
        runs = []
        for seed, model, data in zip(seeds, models, datas, strict=True):
            model.to(device)
            model.prepare(*(x.to(device) for x in split_tensors(data, "train")))
            runs.append(SeedRun(seed, model, None, batched=False))
        log(f"[{label}] {name} is a baseline: nothing to train")
        return runs
    try:
        trainer = _BatchedCell(models, datas, cfg, seeds, true_field, device)
        trainer.trial_step()
    except Exception as exc:  # noqa: BLE001 - any failure under vmap means: train seed by seed
        first = " ".join(str(exc).strip().splitlines()[:2])
        log(
            f"[{label}] {name} cannot be trained batched ({type(exc).__name__}: {first}); "
            f"training its {len(seeds)} seed(s) one after another"
        )
        runs = []
        pairs = zip(seed_checkpoint_dirs, seed_identities, strict=True)
        for seed, data, (ckpt, ident) in zip(seeds, datas, pairs, strict=True):
            model, result = train_seed(
                name, dict(model_kwargs), dict(data), cfg, seed, true_field=true_field,
                checkpoint_dir=ckpt, log=log, label=f"{label}/seed={seed}", device=device,
                identity=ident,
            )  # fmt: skip
            runs.append(SeedRun(seed, model, result, batched=False))
        return runs
    log(f"[{label}] {name}: training seeds {seeds} batched (torch.func.vmap)")
    results = trainer.run(checkpoint_dir=checkpoint_dir, identity=identity, log=log, label=label)
    return [
        SeedRun(seed, model, result, batched=True)
        for seed, model, result in zip(seeds, trainer.models, results, strict=True)
    ]


class _BatchedCell:
    def __init__(self, models, datas, cfg: FitConfig, seeds, true_field, device) -> None:
        self.cfg, self.seeds, self.device = cfg, list(seeds), device
        S = len(seeds)
        self.train = _stack_splits(datas, "train", device)
        if not all(f"val_{k}" in d for d in datas for k in ("t", "y", "obs")):
            raise ValueError("batched training needs every seed's validation split")
        self.val = _stack_splits(datas, "val", device)
        kind = _objective_kind(models[0], cfg)
        self.kind = kind
        self.n_context = None
        d = self.train[1].shape[-1]
        for model, t, y, obs in zip(models, *self.train, strict=True):
            model.to(device)
            model.prepare(t, y, obs)
        self.models = models
        for split in (self.train, self.val):  # the checks forward skips under vmap
            for t, y, obs in zip(*split, strict=True):
                check_inputs(t, y, obs, state_dim=d, min_length=models[0].min_length)
        if kind == "vector_field":
            if true_field is None:
                raise ValueError(f"{type(models[0]).__name__} regresses the true field")
            self.targets = tuple(self._true(true_field, *s) for s in (self.train, self.val))
        else:
            self.targets = (self.train[1], self.val[1])  # unused placeholder of the same shape
        self.val_inputs = (*self.val, self.targets[1])
        if kind == "vector_field":
            self.val_inputs = _pack_points(*self.val_inputs)
        if kind == "multi_step":
            if any("n_context" not in x for x in datas):
                raise ValueError("the multi-step objective needs the datasets' n_context")
            n_context = int(datas[0]["n_context"])
            if any(int(x["n_context"]) != n_context for x in datas):
                raise ValueError("the seeds' datasets have different n_context")
            self.n_context = n_context
            forecast = self.train[2][:, :, n_context:]
            if bool(forecast.any()):
                raise ValueError("training points after the context window are observed")
        self.full_horizon = self.train[0].shape[2] - (self.n_context or 0)
        self.objective = _Objective(models[0], kind, self.n_context)
        params, buffers = torch.func.stack_module_state(models)
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.n = self.train[0].shape[1]
        self.per_epoch = math.ceil(self.n / cfg.batch_size)
        self.S = S
        zeros = {k: torch.zeros_like(v) for k, v in self.params.items()}
        f64 = {"dtype": torch.float64, "device": device}
        self.state = {
            "params": self.params,
            "exp_avg": zeros,
            "exp_avg_sq": {k: torch.zeros_like(v) for k, v in self.params.items()},
            "adam_step": torch.zeros(S, **f64),
            "lr": torch.full((S,), float(cfg.lr), **f64),
            "active": torch.ones(S, dtype=torch.bool, device=device),
            "best": {k: v.detach().clone() for k, v in self.params.items()},
            "has_best": torch.zeros(S, dtype=torch.bool, device=device),
            "best_val": torch.full((S,), math.inf, **f64),
            "best_epoch": torch.zeros(S, dtype=torch.int64, device=device),
            "steps_done": torch.zeros(S, dtype=torch.int64, device=device),
            "diverged_step": torch.full((S,), -1, dtype=torch.int64, device=device),
        }
        self.schedulers = []
        if cfg.plateau_patience is not None:
            for _ in range(S):
                opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(cfg.lr))
                sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                    opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience
                )
                self.schedulers.append((opt, sched))

    def _true(self, true_field, t, y, obs) -> torch.Tensor:
        yy = torch.where(obs.unsqueeze(-1), y, torch.zeros((), dtype=y.dtype)).double()
        return true_field(t.reshape(-1).double(), yy.reshape(-1, y.shape[-1])).reshape(yy.shape)

    def _losses(self, params, t, y, obs, target, horizon: int, which=None) -> torch.Tensor:
        """The seeds' losses (S,); with ``which`` (seed indices) only those seeds are computed
        (stopped seeds cost nothing) and the others' entries are 0."""
        bufs = self.buffers
        if which is not None and len(which) < self.S:
            idx = torch.as_tensor(which, device=self.device)
            params = {k: v[idx] for k, v in params.items()}
            bufs = {k: v[idx] for k, v in bufs.items()}
            t, y, obs, target = (x[idx] for x in (t, y, obs, target))
        names = {f"model.{k}": v for k, v in params.items()}
        bufs = {f"model.{k}": v for k, v in bufs.items()}

        def one(p, b, tt, yy, oo, gg):
            return torch.func.functional_call(self.objective, (p, b), (tt, yy, oo, gg, horizon))

        losses = torch.func.vmap(one)(names, bufs, t, y, obs, target)
        if which is None or len(which) == self.S:
            return losses
        full = losses.new_zeros(self.S)
        return full.index_put((idx,), losses)

    def _batch(self, step: int):
        epoch, k = divmod(step, self.per_epoch)
        b = self.cfg.batch_size
        idx = torch.stack(
            [
                torch.randperm(
                    self.n, generator=torch.Generator().manual_seed(s * 1_000_003 + epoch)
                )[k * b : (k + 1) * b]
                for s in self.seeds
            ]
        ).to(self.device)
        rows = torch.arange(self.S, device=self.device).unsqueeze(1)
        t, y, obs = (x[rows, idx] for x in self.train)
        if self.kind == "vector_field":
            return epoch, *_pack_points(t, y, obs, self.targets[0][rows, idx])
        return epoch, t, y, obs, self.targets[0][rows, idx]

    def _horizon(self, epoch: int | None) -> int:
        if self.kind != "multi_step":
            return 0
        if epoch is None:
            return self.full_horizon
        return curriculum_horizon(epoch, self.full_horizon, self.cfg.horizon_ramp_epochs)

    def trial_step(self) -> None:
        """One loss, backward and validation without any update: raises where vmap cannot run."""
        epoch, t, y, obs, target = self._batch(0)
        losses = self._losses(self.params, t, y, obs, target, self._horizon(epoch))
        torch.autograd.grad(losses.sum(), list(self.params.values()))
        with torch.no_grad():
            self._losses(self.params, *self.val_inputs, self._horizon(None))

    def _train_step(self, step: int) -> torch.Tensor:
        cfg, st = self.cfg, self.state
        epoch, t, y, obs, target = self._batch(step)
        running = [i for i in range(self.S) if bool(st["active"][i])]
        losses = self._losses(self.params, t, y, obs, target, self._horizon(epoch), running)
        names = list(self.params)
        grads = dict(
            zip(
                names,
                torch.autograd.grad(losses.sum(), [self.params[k] for k in names]),
                strict=True,
            )
        )
        active = st["active"]
        with torch.no_grad():
            if cfg.grad_clip is not None:
                norms = torch.stack(
                    [
                        torch.linalg.vector_norm(g.reshape(self.S, -1), 2, dim=1)
                        for g in grads.values()
                    ]
                )
                total = torch.linalg.vector_norm(norms, 2, dim=0)
                coef = torch.clamp(float(cfg.grad_clip) / (total + 1e-6), max=1.0)
                grads = {k: g * _per_seed(coef, g) for k, g in grads.items()}
            beta1, beta2 = ADAM_BETAS
            step_new = torch.where(active, st["adam_step"] + 1, st["adam_step"])
            bc1 = 1 - beta1**step_new
            bc2_sqrt = (1 - beta2**step_new).sqrt()
            step_size = st["lr"] / bc1
            for k in names:
                p, g = self.params[k], grads[k]
                if cfg.weight_decay != 0:
                    g = g.add(p, alpha=cfg.weight_decay)
                m = st["exp_avg"][k].lerp(g, 1 - beta1)
                v = st["exp_avg_sq"][k].mul(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v.sqrt() / _per_seed(bc2_sqrt, v)).add_(ADAM_EPS)
                p_new = p + (-_per_seed(step_size, p)) * m / denom
                keep = _per_seed(active, p).bool()
                p.copy_(torch.where(keep, p_new, p))
                st["exp_avg"][k].copy_(torch.where(keep, m, st["exp_avg"][k]))
                st["exp_avg_sq"][k].copy_(torch.where(keep, v, st["exp_avg_sq"][k]))
            st["adam_step"].copy_(step_new)
        return losses.detach()

    def _evaluate(self, step: int, which: list[int], histories) -> None:
        st = self.state
        ramp = ramp_epochs(self.cfg, self.kind)
        with torch.no_grad():
            vloss = self._losses(self.params, *self.val_inputs, self._horizon(None), which)
        for s in which:
            v = float(vloss[s])
            lr = (
                float(self.schedulers[s][0].param_groups[0]["lr"])
                if self.schedulers
                else float(st["lr"][s])
            )
            record = {"step": step, "epoch": step / self.per_epoch, "lr": lr, "val_loss": v}
            if self.schedulers and step > 0 and math.isfinite(v) and step // self.per_epoch >= ramp:
                opt, sched = self.schedulers[s]
                sched.step(v)
                st["lr"][s] = float(opt.param_groups[0]["lr"])
            if v < float(st["best_val"][s]):
                st["best_val"][s] = v
                st["best_epoch"][s] = step // self.per_epoch
                st["has_best"][s] = True
                with torch.no_grad():
                    for k, p in self.params.items():
                        st["best"][k][s].copy_(p[s])
            histories[s].append({**record, "diverged": False})

    def run(self, *, checkpoint_dir, identity, log, label) -> list[LoopResult]:
        cfg, st, S = self.cfg, self.state, self.S
        per_epoch = self.per_epoch
        total = cfg.epochs * per_epoch
        eval_every = cfg.eval_every_epochs * per_epoch
        ckpt_every = cfg.checkpoint_every_epochs * per_epoch
        log_every = cfg.log_every_epochs * per_epoch
        histories: list[list[dict[str, Any]]] = [[] for _ in range(S)]
        identity = normalise_identity(identity)
        cell = _CellState(self.state, self.schedulers)
        stateful = {"cell": cell}
        start, resumed_from, ckpt_path = 0, None, None
        if checkpoint_dir is not None:
            from otgap.io import ensure_writable_dir

            ckpt_path = ensure_writable_dir(checkpoint_dir) / CHECKPOINT_NAME
            if ckpt_path.exists():
                try:
                    payload = load_checkpoint(ckpt_path, stateful, identity)
                except StaleCheckpoint as exc:
                    log(f"[{label}] discarding checkpoint {ckpt_path}: {exc}; starting fresh")
                else:
                    start = resumed_from = int(payload["step"])
                    histories = [list(h) for h in payload["history"]]
                    log(f"[{label}] resumed the batched seeds from step {start}/{total}")
        t0 = time.perf_counter()
        marks: list[tuple[int, float]] = []  # (step, seconds) after each evaluation of the cell

        def active_seeds() -> list[int]:
            return [s for s in range(S) if bool(st["active"][s])]

        with _SignalFlag() as sig:
            if start == 0:
                self._evaluate(0, list(range(S)), histories)
                marks.append((0, time.perf_counter() - t0))
            step = start
            # each seed's last training loss: a seed that stopped early keeps its final value in
            # the progress lines (its masked loss is 0 from then on)
            last = [float("nan")] * S
            while step < total and active_seeds():
                stepping = active_seeds()
                losses = self._train_step(step)
                step += 1
                for s in stepping:
                    last[s] = float(losses[s])
                for s in active_seeds():
                    if not math.isfinite(float(losses[s])):
                        log(f"[{label}/seed={self.seeds[s]}] diverged at step {step}: "
                            f"loss={float(losses[s])}")  # fmt: skip
                        st["diverged_step"][s] = step
                        st["steps_done"][s] = step
                        st["active"][s] = False
                        n_hist = len(histories[s])
                        self._evaluate(step, [s], histories)
                        histories[s][n_hist]["diverged"] = True
                is_last = step == total
                if log_every and (step % log_every == 0 or is_last):
                    rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
                    shown = ", ".join(
                        f"{last[s]:.4g}" + ("" if st["active"][s] else " (stopped)")
                        for s in range(S)
                    )
                    log(f"[{label}] step {step}/{total} losses=[{shown}] ({rate:.1f} steps/s)")
                if is_last or (eval_every and step % eval_every == 0):
                    running = active_seeds()
                    self._evaluate(step, running, histories)
                    marks.append((step, time.perf_counter() - t0))
                    for s in running:
                        st["steps_done"][s] = step
                        ramp = ramp_epochs(cfg, self.kind)
                        best = int(st["best_epoch"][s])
                        if not is_last and patience_exhausted(
                            step // per_epoch, best, cfg.patience, ramp
                        ):
                            log(
                                f"[{label}/seed={self.seeds[s]}] stopped early at step "
                                f"{step}/{total}: last loss {last[s]:.4g}, best epoch {best}"
                            )
                            st["active"][s] = False
                if ckpt_path is not None and not is_last and active_seeds():
                    if sig.raised is not None or (ckpt_every and step % ckpt_every == 0):
                        save_checkpoint(ckpt_path, step, stateful, histories, {}, identity)
                if sig.raised is not None:
                    log(
                        f"[{label}] signal {sig.raised} received: checkpoint written at step {step}"
                    )
                    raise Preempted(
                        f"stopped by signal {sig.raised} at step {step}; rerun to resume"
                    )
            for s in active_seeds():
                st["steps_done"][s] = step
        wall = time.perf_counter() - t0
        results = []
        with torch.no_grad():
            for s, model in enumerate(self.models):
                use_best = cfg.keep == "best" and bool(st["has_best"][s])
                source = st["best"] if use_best else self.params
                state = {k: v[s].detach().clone() for k, v in source.items()}
                state.update({k: v[s].detach().clone() for k, v in self.buffers.items()})
                model.load_state_dict(state)
                model.cpu()
                steps_done = int(st["steps_done"][s])
                div = int(st["diverged_step"][s])
                extras = {
                    "best_val_loss": float(st["best_val"][s]),
                    "best_epoch": int(st["best_epoch"][s]),
                    "stopped_epoch": steps_done // per_epoch,
                }
                results.append(
                    LoopResult(
                        history=histories[s],
                        steps_done=steps_done,
                        diverged=div >= 0,
                        diverged_step=div if div >= 0 else None,
                        resumed_from=resumed_from,
                        extras={**extras, "cell_wall_seconds": wall},
                        wall_seconds=wall / S,  # this seed's share of the cell's time
                        marks=marks,  # the cell's
                    )
                )
        return results
