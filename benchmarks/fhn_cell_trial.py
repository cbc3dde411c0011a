"""Train one A.1 cell (every seed of a system x condition x model, batched as the training job does)
with trial settings and print each seed's best VALIDATION loss and the training's CPU seconds.

Settings are judged by the validation loss only (the quantity early stopping, best weights and
the workflow's lr tuning use, docs/a1_protocol.md): the datasets are reduced to their train and
validation splits before training (otgap.train.tuning.train_val_only), so no test-split or rollout
number can enter a choice made with this script. ``--seeds`` defaults to fhn.train.tuning.seeds
(not evaluation seeds; build their datasets with the workflow's dataset targets).

The settings are the config's for that cell (fhn.train, its per-model overrides and the system's
system_overrides) with ``--settings``/``--model-kwargs`` (JSON) merged over them; the datasets are
the run's own (build them first, e.g. with the workflow's dataset targets). Used to choose the quick
config's fhn_forced settings (docs/experiments.md, "Quick-scale training settings and why"):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fhn_cell_trial.py --system fhn_forced \\
        --model neural_ode --settings '{"lr": 0.01, "grad_clip": 0.5}' --model-kwargs '{"n_sub": 2}'
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import torch

from otgap.config import fhn_system_train, load_config
from otgap.data.fhn import system_params, vector_field
from otgap.io import read_npz
from otgap.train.batched import train_seeds
from otgap.train.sequence import fit_config
from otgap.train.tuning import score, train_val_only


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=["config/config.yaml", "config/quick.yaml"])
    ap.add_argument("--schema", default="workflow/schemas/config.schema.yaml")
    ap.add_argument("--system", default="fhn_forced")
    ap.add_argument("--condition", default="jitter")
    ap.add_argument("--model", default="neural_ode")
    ap.add_argument("--seeds", default=None, help="comma-separated; default: the tuning seeds")
    ap.add_argument("--settings", default="{}", help="JSON: training keys over the config's")
    ap.add_argument(
        "--model-kwargs", default="{}", help="JSON: constructor keywords over the config's"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(*args.config, schema=args.schema)
    fhn, train = cfg["fhn"], cfg["fhn"]["train"]
    own = fhn_system_train(train, args.system)
    settings = {**train, **own["overrides"].get(args.model, {}), **json.loads(args.settings)}
    kwargs = {
        "hidden": int(train["hidden"]),
        **own["model_kwargs"].get(args.model, {}),
        **json.loads(args.model_kwargs),
    }
    params = system_params(args.system, fhn.get("system_params", {}).get(args.system, {}))
    if train["phase_aware"] and params["amp"] != 0.0:
        kwargs["drive_omega"] = params["omega"]
    tuning = train.get("tuning") or {}
    seeds = (
        [int(s) for s in args.seeds.split(",")]
        if args.seeds
        else [int(s) for s in tuning.get("seeds", [100, 101])]
    )
    root = f"{cfg['results_root']}/{cfg['run']}/data/fhn/system={args.system}"
    paths = [Path(f"{root}/condition={args.condition}/seed={s}/dataset.npz") for s in seeds]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:  # `make bench` runs every script: say what to build instead of failing
        print(f"skipped: the run's datasets are missing; build them first with\n"
              f"  .venv/bin/snakemake --profile profiles/default --configfile "
              f"{' '.join(args.config[1:])} --cores 1 {' '.join(missing)}")  # fmt: skip
        return
    datas = [train_val_only(read_npz(p)) for p in paths]
    true_field = partial(vector_field, system=args.system, params=params)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    runs = train_seeds(
        args.model, kwargs, datas, fit_config(settings), seeds, true_field=true_field,
        log=lambda msg: None,
    )  # fmt: skip
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    val = [
        float(r.result.extras.get("best_val_loss", float("nan")))
        if r.result is not None
        else float("nan")
        for r in runs
    ]
    stops = [
        (r.result.extras.get("stopped_epoch"), r.result.extras.get("best_epoch"))
        if r.result is not None
        else None
        for r in runs
    ]
    print(f"{args.system}/{args.condition}/{args.model} kwargs {kwargs}")
    print(f"settings over the config's: {args.settings}")
    print(f"best validation loss per seed {[float(f'{x:.4g}') for x in val]}, "
          f"geometric mean {score(val):.4g}")  # fmt: skip
    print(f"(stopped, best) epoch per seed {stops}")
    print(f"training: {cpu:.1f} CPU-s, {wall:.1f} s wall (torch threads 1)")


if __name__ == "__main__":
    main()
