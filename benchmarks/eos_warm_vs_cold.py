"""Warm- vs cold-started sharpness tracking inside the EoS training stage; prints the HVP ratio.

Usage::

    .venv/bin/python benchmarks/eos_warm_vs_cold.py [--run-json PATH] [--threads N]

Trains one Edge-of-Stability run twice with ``otgap.train.eos.train_eos``: as the stage does
(each measurement warm-started from the previous top eigenvector, with the overtaking guard of
``otgap.curvature.lanczos``), and with every measurement started cold (``v0=None``). Printed:
Hessian-vector products used by the measurements, their median per measurement, the wall time of
each run and the largest relative difference between the two sharpness series (both are solved to
the same ``eig_tol``). The default run is the quick config's full-batch GD at lr 0.2 on digits
(seed 0), which reaches the edge of stability; ``--run-json`` takes the settings of any finished
run (its ``run.json``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import otgap.curvature as curvature
from otgap.data.classification import load_dataset
from otgap.train.eos import EosSettings, train_eos

QUICK_GD = {
    "batch_size": 1, "checkpoint_every": 250, "eig_every": 50, "eig_k": 1, "eig_max_iter": 100,
    "eig_subset": 1000, "eig_tol": 1e-4, "epochs": 0, "eval_every": 50, "gd_train_subset": 1000,
    "loss": "mse", "lr": 0.2, "model": "mlp",
    "model_hyper": {"activation": "tanh", "hidden": [200, 200]}, "n_snapshots": 20,
    "optimizer": "gd", "optimizer_hyper": {}, "seed": 0, "steps": 2500,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-json", help="run.json of a finished EoS run (default: quick GD)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = QUICK_GD
    if args.run_json:
        with open(args.run_json) as fh:
            settings = json.load(fh)["settings"]
    data = load_dataset("digits")
    original = curvature.hessian_eigenpairs
    series = {}
    try:
        for mode in ("warm", "cold"):

            def patched(*a, _cold=mode == "cold", **kw):
                if _cold:
                    kw["v0"] = None
                return original(*a, **kw)

            curvature.hessian_eigenpairs = patched  # train_eos imports it at call time
            t0 = time.perf_counter()
            hist = train_eos(data, EosSettings.from_params(settings)).history
            wall = time.perf_counter() - t0
            hist = hist.dropna(subset=["sharpness_raw"])
            series[mode] = hist
            print(
                f"{mode}: {len(hist)} measurements, {int(hist.eig_matvec.sum())} HVPs "
                f"(median {hist.eig_matvec.median():.0f}), run {wall:.1f} s"
            )
    finally:
        curvature.hessian_eigenpairs = original
    warm, cold = series["warm"], series["cold"]
    diff = np.abs(warm.sharpness_raw.values / cold.sharpness_raw.values - 1.0).max()
    print(
        f"cold / warm HVPs: {cold.eig_matvec.sum() / warm.eig_matvec.sum():.2f}; "
        f"largest relative sharpness difference {diff:.1e} "
        f"(threshold 2/lr = {warm.threshold.iloc[0]:.4g})"
    )


if __name__ == "__main__":
    main()
