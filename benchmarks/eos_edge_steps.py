"""Steps full-batch GD needs to reach a fraction of its threshold 2/lr (issue: runs long enough).

A minibatch EoS run can only say where SGD's sharpness settles if it runs at least as long as
full-batch GD at the same learning rate, on the same data, needs to approach its own edge. This
script trains GD (the quick config's network and data: digits, 64-200-200-10 tanh MLP, MSE, the
1000 training samples) at the given learning rates and prints the first measured step at which
lambda_1 >= fraction * 2/lr, with the wall time of each run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eos_edge_steps.py --lrs 0.1 0.15 0.2 \
        --steps 3000 --eig-every 25 --seeds 0
"""

from __future__ import annotations

import argparse
import time

import torch

from otgap.data.classification import load_dataset
from otgap.train.eos import EosSettings, train_eos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.15, 0.2])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eig-every", type=int, default=25)
    ap.add_argument("--fraction", type=float, default=0.9)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("digits")
    print("lr seed threshold steps_to_fraction wall_s final_ratio")
    for lr in args.lrs:
        for seed in args.seeds:
            s = EosSettings(
                model="mlp",
                optimizer="gd",
                lr=lr,
                loss="mse",
                seed=seed,
                model_hyper={"hidden": [200, 200], "activation": "tanh"},
                steps=args.steps,
                gd_train_subset=1000,
                eig_subset=None,
                eval_every=args.eig_every,
                eig_every=args.eig_every,
                n_snapshots=2,
            )
            t0 = time.perf_counter()
            res = train_eos(data, s)
            wall = time.perf_counter() - t0
            h = res.history.dropna(subset=["sharpness"])
            ratio = h["sharpness"] / res.summary["threshold"]
            hit = h.loc[ratio >= args.fraction, "step"]
            first = int(hit.iloc[0]) if len(hit) else -1
            print(
                f"{lr:g} {seed} {res.summary['threshold']:.4g} {first} {wall:.1f} "
                f"{float(ratio.iloc[-1]):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
