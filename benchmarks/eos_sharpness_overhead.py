"""Cost of sharpness tracking at the paper's frequency, as a fraction of training time.

Usage::

    .venv/bin/python benchmarks/eos_sharpness_overhead.py [--threads N] [--n-train N]
        [--steps N] [--repeats N] [--device cpu|cuda]

Setup (Appendix A.2): MLP 2352-256-128-9 (ReLU, cross-entropy), SGD lr 0.15, batch 128, on random
data of PathMNIST's shape (N x 3 x 28 x 28 in [-1, 1], 9 classes; N = 89,996 gives 704 steps per
epoch). Sharpness as the EoS stage measures it: top Hessian eigenvalue by
``otgap.curvature.sharpness`` (Lanczos, tol 1e-4, at most 100 products) on the first 256 training
samples, once per epoch. The first measurement starts from a random vector ("cold"); later ones
start from the previous top eigenvector after a stretch of training ("warm"), as in
``otgap.train.eos``.

Timed: ``--steps`` SGD steps (extrapolated to one epoch); then ``--repeats`` times: ``--between``
SGD steps, a cold and a warm measurement at the same weights (medians). Printed: per-step and per-epoch training time, per-measurement time, and
the overhead fraction t_eig / (t_epoch + t_eig) for cold and warm starts. The loss/accuracy
evaluation that the stage also does once per epoch is a separate cost and is not counted.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from otgap.curvature import sharpness
from otgap.models.mlp import MLP


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--n-train", type=int, default=89_996, help="training samples (PathMNIST)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=200, help="timed SGD steps")
    ap.add_argument("--repeats", type=int, default=3, help="measurements (cold and warm each)")
    ap.add_argument("--between", type=int, default=100, help="SGD steps between measurements")
    ap.add_argument("--eig-subset", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(args.n_train, 3, 28, 28, generator=gen) * 2 - 1).to(dev)
    y = torch.randint(0, 9, (args.n_train,), generator=gen).to(dev)
    torch.manual_seed(0)
    model = MLP((3, 28, 28), 9).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.15)
    steps_per_epoch = math.ceil(args.n_train / args.batch_size)
    order = torch.randperm(args.n_train, generator=gen).to(dev)

    def train(n: int, offset: int) -> float:
        sync()
        t0 = time.perf_counter()
        for i in range(offset, offset + n):
            j = i % steps_per_epoch
            idx = order[j * args.batch_size : (j + 1) * args.batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        sync()
        return time.perf_counter() - t0

    def measure(v0):
        sync()
        t0 = time.perf_counter()
        values, vectors = sharpness(
            model, F.cross_entropy, x[: args.eig_subset], y[: args.eig_subset],
            k=1, tol=1e-4, max_iter=100, v0=v0, return_vectors=True,
        )  # fmt: skip
        sync()
        return time.perf_counter() - t0, float(values[0]), vectors[0]

    train(20, 0)  # warm-up
    t_steps = train(args.steps, 20)
    t_step = t_steps / args.steps
    t_epoch = t_step * steps_per_epoch
    _, lam, v = measure(None)
    cold, warm = [], []
    for r in range(args.repeats):
        # the weights move between measurements, as in training; then both starts at equal weights
        train(args.between, 20 + args.steps + args.between * r)
        t, _, _ = measure(None)
        cold.append(t)
        t, lam, v = measure(v)
        warm.append(t)
    t_cold, t_warm = statistics.median(cold), statistics.median(warm)

    print(f"device {dev}, threads {args.threads}, {args.n_train} samples, batch {args.batch_size}")
    print(f"SGD step          {t_step * 1e3:8.2f} ms   ({args.steps} steps timed)")
    print(f"one epoch         {t_epoch:8.2f} s    ({steps_per_epoch} steps, extrapolated)")
    print(f"sharpness cold    {t_cold:8.3f} s    (median of {args.repeats})")
    print(f"sharpness warm    {t_warm:8.3f} s    (median; lambda_1 = {lam:.4g} at the last one)")
    for name, t in (("cold", t_cold), ("warm", t_warm)):
        print(f"overhead ({name}): {t / (t_epoch + t):.4f} of training time at one eig per epoch")


if __name__ == "__main__":
    main()
