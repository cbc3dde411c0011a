"""Batched loss-grid evaluation (vmap over grid points) against a per-point Python loop.

Two batched variants are timed: ``vmap`` of the whole model over grid points, and the default
that also evaluates the first (linear) layer once per plane direction (exact; see
``otgap.landscape.grid``). Setting of the paper's Appendix A.2: MLP 2352-256-128-9 (ReLU), 1000 samples of PathMNIST-shaped
random data (3 x 28 x 28, 9 classes), cross-entropy, a 40 x 40 grid. The loop copies each point into
the model and runs one forward pass; it is timed on a subset of points and extrapolated.

    .venv/bin/python benchmarks/landscape_grid.py [--grid 40] [--loop-points 200] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from otgap.landscape import BatchedLoss, grid_axes, loss_at_point_loop, paper_plane, project
from otgap.landscape.grid import flat_parameters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=40)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--loop-points", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(2352, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 9),
    )
    x = torch.randn(args.samples, 3, 28, 28)
    y = torch.randint(0, 9, (args.samples,))
    theta0 = flat_parameters(model).numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    steps = rng.normal(scale=1e-3, size=(50, theta0.size)).cumsum(axis=0)
    snaps = np.concatenate([theta0[None], theta0 + steps])
    plane = paper_plane(snaps)
    coords, _ = project(plane, snaps)
    alphas, betas = grid_axes(coords, args.grid, 0.4)
    n_points = args.grid**2
    print(
        f"model params: {theta0.size}, samples: {args.samples}, grid: {args.grid}x{args.grid}, "
        f"threads: {args.threads}, chunk: {args.chunk}"
    )

    # The machine may be shared: each measurement is repeated and the fastest repeat is kept
    # (the usual timeit practice; noise only ever adds time).
    timings, grids = {}, {}
    for label, affine in (
        ("vmap over the whole model", False),
        ("vmap + affine first layer", True),
    ):
        ev = BatchedLoss(model, F.cross_entropy, x, y, chunk_size=args.chunk, affine_head=affine)
        ev.grid(plane, alphas[:2], betas[:2])  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            grids[label] = ev.grid(plane, alphas, betas)
            best = min(best, time.perf_counter() - t0)
        timings[label] = best

    aa, bb = np.meshgrid(alphas, betas)
    idx = np.linspace(0, n_points - 1, min(args.loop_points, n_points)).astype(int)
    points = [plane.point(aa.flat[i], bb.flat[i]) for i in idx]
    loss_at_point_loop(model, F.cross_entropy, points[0], x, y)  # warm-up
    t_loop_subset = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loop = [loss_at_point_loop(model, F.cross_entropy, v, x, y) for v in points]
        t_loop_subset = min(t_loop_subset, time.perf_counter() - t0)
    t_loop = t_loop_subset * n_points / len(idx)

    print(
        f"per-point loop: {t_loop_subset:.2f} s for {len(idx)} points -> {t_loop:.2f} s "
        f"extrapolated to {n_points} ({1e3 * t_loop / n_points:.2f} ms/point)"
    )
    for label, t in timings.items():
        err = np.max(np.abs(grids[label].ravel()[idx] - np.array(loop)))
        print(
            f"batched, {label}: {t:.2f} s for {n_points} points "
            f"({1e3 * t / n_points:.2f} ms/point); speed-up over the loop {t_loop / t:.1f}x; "
            f"max |difference| from the loop {err:.1e} (float32)"
        )


if __name__ == "__main__":
    main()
