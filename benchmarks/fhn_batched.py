"""Seeds trained together vs one after another: FHN training throughput at paper size, per model.

For each trained model of the config (default ``config/config.yaml``: n_train 300, batch 64,
hidden 128, its context and horizon, evaluation every epoch, its model keywords), the datasets of
``--seeds`` seeds (default 5) of one (system, condition) cell are built, then the cell is trained
for ``--epochs`` epochs, ``--repeats`` times alternately: batched
(``otgap.train.batched.train_seeds``) and seed by seed (``otgap.train.sequence.train_seed``, the
loop a job ran before). Early stopping is off so both
do the same number of steps (``--early-stopping`` keeps the config's patience: a real job, where
seeds stop at different epochs; steps/s then counts the steps each seed really made). Each mode is warmed up by a one-epoch run first; the time is the
training loop's own wall time (model building, data and process start-up excluded), evaluations
included as in a real job; the fastest repeat of each mode counts (a shared machine's load varies).
Prints seed-steps per second of each mode and their ratio.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fhn_batched.py [--config config/config.yaml]
        [--seeds 5] [--epochs 2] [--repeats 2] [--threads 1] [--models neural_ode,lstm_dt]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial

import torch
import yaml

from otgap.config import fhn_system_train
from otgap.data.fhn import attractor_std, system_params, vector_field
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.train.batched import train_seeds
from otgap.train.sequence import fit_config, train_seed


def _quiet(msg: str) -> None:
    del msg


def time_batched(name, kwargs, datas, settings, seeds, true_field, *, epochs: int):
    """Loop wall time of the seeds trained together, and whether they really were batched."""
    cfg = fit_config({**settings, "epochs": epochs})
    runs = train_seeds(name, kwargs, datas, cfg, seeds, true_field=true_field, log=_quiet)
    steps = sum(r.result.steps_done for r in runs)
    if not runs[0].batched:
        return sum(r.result.wall_seconds for r in runs), steps, False
    return runs[0].result.extras["cell_wall_seconds"], steps, True


def time_loop(name, kwargs, datas, settings, seeds, true_field, *, epochs: int) -> float:
    """Summed loop wall time and steps of the seeds trained one after another (train_seed)."""
    cfg = fit_config({**settings, "epochs": epochs})
    results = [
        train_seed(name, kwargs, d, cfg, s, true_field=true_field, log=_quiet)[1]
        for s, d in zip(seeds, datas, strict=True)
    ]
    return sum(r.wall_seconds for r in results), sum(r.steps_done for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--system", default="fhn")
    ap.add_argument("--condition", default="jitter")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--early-stopping",
        action="store_true",
        help="keep the config's patience (a real job: stopped seeds leave the batch); "
        "--epochs is then the upper bound",
    )
    ap.add_argument("--models", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as fh:
        cfg = yaml.safe_load(fh)["fhn"]
    train = cfg["train"]
    cond = next(c for c in cfg["conditions"] if c["name"] == args.condition)
    # the rollouts play no part in training: keep them tiny so that building the data is quick
    spec = replace(DatasetSpec(**cfg.get("dataset", {})), rollout_n=1, rollout_length=50)
    params = system_params(args.system)
    scale = attractor_std(args.system, seed=0)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    datas = [build_dataset(args.system, Condition(**cond), s, spec, 0.0, scale) for s in seeds]
    print(f"{args.config}: {args.system}/{args.condition}, {len(seeds)} seeds, n_train "
          f"{spec.n_train}, context {spec.n_context}, horizon {spec.horizon}; data built in "
          f"{time.perf_counter() - t0:.1f} s; torch threads {torch.get_num_threads()}")  # fmt: skip
    true_field = partial(vector_field, system=args.system)
    models = args.models.split(",") if args.models else [
        m for m in cfg["models"] if m != "last_observation"
    ]  # fmt: skip
    print(f"{'model':18s} {'batched':>8s} {'steps/s batched':>16s} {'steps/s loop':>13s} "
          f"{'ratio':>6s}")  # fmt: skip
    for name in models:
        own = fhn_system_train(train, args.system)  # the system's own settings merged in
        settings = {**train, **own["overrides"].get(name, {})}
        kwargs = {"hidden": int(train["hidden"]), **own["model_kwargs"].get(name, {})}
        if params["amp"] != 0.0:
            kwargs["drive_omega"] = params["omega"]
        if not args.early_stopping:
            settings = {**settings, "patience": None}
        settings = {**settings, "checkpoint_every": 0}

        job = (name, kwargs, datas, settings, seeds, true_field)
        time_batched(*job, epochs=1)  # warm-up
        time_loop(*job, epochs=1)
        walls_b, walls_l = [], []
        for _ in range(args.repeats):  # alternated, best of each: the machine may be loaded
            wall, steps_b, was_batched = time_batched(*job, epochs=args.epochs)
            walls_b.append(wall)
            wall, steps_l = time_loop(*job, epochs=args.epochs)
            walls_l.append(wall)
        if steps_b != steps_l:
            raise RuntimeError(f"{name}: {steps_b} seed-steps batched but {steps_l} in the loop")
        rate_b, rate_l = steps_b / min(walls_b), steps_l / min(walls_l)
        print(f"{name:18s} {str(was_batched):>8s} {rate_b:16.2f} {rate_l:13.2f} "
              f"{rate_b / rate_l:6.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
