"""One training step of each A.1 sequence model: a vectorised batch against a loop over samples.

A batch of 256 irregular sequences (every sample with its own gaps, 30% of the points unobserved)
takes one forward+backward of the one-step-ahead loss. The baseline runs the sequences one at a
time (batch of 1), accumulating the same gradient; it is timed on the first ``--loop-subset``
sequences and scaled linearly to the batch (each sample costs the same: same length, same number
of substeps). Before timing, the script checks on 8 sequences that the batched and the looped
gradients agree. Prints the time of each and the ratio (target >= 20x). The oracle Neural ODE has
the same forward pass as the Neural ODE and is skipped; the baseline has no parameters.

    .venv/bin/python benchmarks/fhn_models.py [--batch 256] [--length 60] [--hidden 128]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from otgap.models.sequence import SEQUENCE_MODELS, build_sequence_model
from otgap.train.sequence import one_step_loss


def irregular_batch(B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gaps = 0.2 + 0.6 * torch.rand(B, T - 1, generator=g, dtype=torch.float64)
    t = torch.cat([torch.zeros(B, 1, dtype=torch.float64), gaps.cumsum(1)], dim=1)
    y = torch.randn(B, T, 2, generator=g)
    obs = torch.rand(B, T, generator=g) < 0.7
    obs[:, 0] = True
    obs[:, 1] = True  # every sample has a loss term
    return t, y, obs


def grads(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def step_batched(model, t, y, obs):
    model.zero_grad(set_to_none=True)
    mask = obs[:, 1:]
    # the same weighting as the loop below: every observed point counts once
    y_hat = model(t, y, obs)
    diff = (y_hat[:, 1:] - y[:, 1:])[mask]
    loss = diff.pow(2).sum() / (2 * mask.sum())
    loss.backward()


def step_loop(model, t, y, obs):
    model.zero_grad(set_to_none=True)
    total = 2 * obs[:, 1:].sum()
    for b in range(t.shape[0]):
        sl = slice(b, b + 1)
        y_hat = model(t[sl], y[sl], obs[sl])
        diff = (y_hat[:, 1:] - y[sl, 1:])[obs[sl, 1:]]
        (diff.pow(2).sum() / total).backward()


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--length", type=int, default=60, help="points per sequence (paper: 40 + 20)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-subset", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t, y, obs = irregular_batch(args.batch, args.length)
    sub = min(args.loop_subset, args.batch)
    ts, ys, obss = t[:sub], y[:sub], obs[:sub]
    print(
        f"torch {torch.__version__}, {platform.machine()}, {args.threads} thread(s); "
        f"batch {args.batch} x {args.length} points, hidden {args.hidden}; "
        f"loop timed on {sub} samples and scaled x{args.batch / sub:g}"
    )
    print(f"{'model':16s} {'batched s':>10s} {'loop s':>10s} {'ratio':>8s} {'max |dgrad|':>12s}")
    for name in SEQUENCE_MODELS:
        if name == "neural_ode_oracle":
            continue
        torch.manual_seed(0)
        model = build_sequence_model(name, hidden=args.hidden)
        if model.is_baseline:
            continue
        check = irregular_batch(8, args.length, seed=1)
        step_batched(model, *check)
        g_batch = grads(model).clone()
        step_loop(model, *check)
        diff = float((g_batch - grads(model)).abs().max())
        assert torch.isfinite(one_step_loss(model, t, y, obs))
        tb = best_of(lambda m=model: step_batched(m, t, y, obs), args.repeats)
        tl = best_of(lambda m=model: step_loop(m, ts, ys, obss), 1) * args.batch / sub
        print(f"{name:16s} {tb:10.3f} {tl:10.2f} {tl / tb:7.1f}x {diff:12.2e}", flush=True)


if __name__ == "__main__":
    main()
