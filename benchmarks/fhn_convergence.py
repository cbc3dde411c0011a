"""Convergence check of the A.1 training settings, once per model, independent of the stopping rule.

For each model, one seed (default 0) of one dataset is trained WITHOUT early stopping for
``--factor`` (2) times the epoch at which the configured rule (patience on the validation loss)
would have stopped it, and the best validation loss up to the stopping epoch is compared with the
best up to ``factor`` x that epoch. The batches and the learning-rate schedule of an uninterrupted
run are the same as those of the stopped run up to its stopping epoch, so one long run gives both
numbers. Prints per model: stopping epoch, best validation loss at it and at twice it, and the
relative improvement (the issue's criterion: under 5%).

    .venv/bin/python benchmarks/fhn_convergence.py [--config config/quick.yaml]
        [--system fhn] [--condition jitter] [--seed 0] [--models tlstm,...]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
import yaml

from otgap.config import fhn_system_train
from otgap.data.fhn import attractor_std, system_params, vector_field
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.train.sequence import fit_config, train_seed


def stop_epoch(history: list[dict], patience: int) -> tuple[int, float]:
    """Epoch at which patience-based stopping ends the run, and the best loss up to it."""
    best, best_epoch = np.inf, 0
    for rec in history:
        if "val_loss" not in rec:
            continue
        ep = int(round(rec["epoch"]))
        if rec["val_loss"] < best:
            best, best_epoch = rec["val_loss"], ep
        if ep - best_epoch >= patience:
            return ep, best
    return int(round(history[-1]["epoch"])), best


def best_until(history: list[dict], epoch: int) -> float:
    return min(r["val_loss"] for r in history if "val_loss" in r and r["epoch"] <= epoch + 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/quick.yaml")
    ap.add_argument("--system", default="fhn")
    ap.add_argument("--condition", default="jitter")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--factor", type=float, default=2.0)
    ap.add_argument("--models", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = yaml.safe_load(open(args.config))["fhn"]
    train = cfg["train"]
    cond = next(c for c in cfg["conditions"] if c["name"] == args.condition)
    spec = DatasetSpec(**cfg.get("dataset", {}))
    params = system_params(args.system)
    scale = attractor_std(args.system, seed=0)
    data = build_dataset(args.system, Condition(**cond), args.seed, spec, 0.0, scale)
    models = (
        args.models.split(",")
        if args.models
        else [m for m in cfg["models"] if m != "last_observation"]
    )
    print(f"{args.config}: {args.system}/{args.condition} seed {args.seed}")
    print(
        f"{'model':18s} {'stop':>5s} {'best@stop':>10s} {'best@2x':>10s} {'improve':>8s} {'s':>6s}"
    )
    for name in models:
        own = fhn_system_train(train, args.system)  # the system's own settings merged in
        settings = {**train, **own["overrides"].get(name, {})}
        kwargs = {"hidden": int(train["hidden"]), **own["model_kwargs"].get(name, {})}
        if params["amp"] != 0.0 and name != "last_observation":
            kwargs["drive_omega"] = params["omega"]
        base = fit_config(settings)
        patience = int(base.patience)
        # first the stopped run, to know its stopping epoch (cheap relative to the long run)
        t0 = time.perf_counter()
        _, res = train_seed(
            name,
            kwargs,
            data,
            base,
            args.seed,
            true_field=partial(vector_field, system=args.system),
            log=lambda msg: None,
        )
        stop, _ = stop_epoch(res.history, patience)
        long_cfg = fit_config(
            {**settings, "patience": None, "epochs": int(np.ceil(args.factor * max(stop, 1)))}
        )
        _, res2 = train_seed(
            name,
            kwargs,
            data,
            long_cfg,
            args.seed,
            true_field=partial(vector_field, system=args.system),
            log=lambda msg: None,
        )
        b1 = best_until(res2.history, stop)
        b2 = best_until(res2.history, args.factor * stop)
        rel = (b1 - b2) / b1
        print(
            f"{name:18s} {stop:5d} {b1:10.3e} {b2:10.3e} {100 * rel:7.2f}% "
            f"{time.perf_counter() - t0:6.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
