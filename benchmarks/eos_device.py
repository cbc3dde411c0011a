"""The EoS training stage on CPU against CUDA: one PathMNIST-shaped SGD epoch through train_eos.

Usage::

    .venv/bin/python benchmarks/eos_device.py [--n-train N] [--epochs N] [--threads N]
        [--full-batch-steps N]

Setup (Appendix A.2): the paper's MLP 2352-256-128-9 (ReLU, cross-entropy), SGD lr 0.15, batch
128, on random data of PathMNIST's shape (N x 3 x 28 x 28 in [-1, 1], 9 classes; N = 89,996 is
704 steps per epoch), with loss/accuracy evaluation and one sharpness measurement (Lanczos, 256
samples) per epoch: the stage's own code (``otgap.train.eos.train_eos``), run once with
``device="cpu"`` and, when a GPU is visible, once with ``device="cuda"`` (deterministic kernels).
Then, as the paper config's full-batch GD entry does, ``--full-batch-steps`` GD steps on 5000
samples with a sharpness measurement on all 5000 every 50 steps. Printed: wall seconds per
device, the CPU/CUDA ratio, peak resident memory of this process and peak CUDA memory.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from otgap.data.classification import ClassificationData
from otgap.train.eos import EosSettings, train_eos


def pathmnist_like(n_train: int, n_test: int = 7180) -> ClassificationData:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n_train + n_test, 3, 28, 28, generator=gen) * 2 - 1
    y = torch.randint(0, 9, (n_train + n_test,), generator=gen)
    return ClassificationData(
        "pathmnist-like", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 9
    )


def timed(data: ClassificationData, settings: EosSettings) -> tuple[float, float]:
    """Wall and CPU seconds of one run (CPU time is what a loaded shared machine still shows)."""
    if settings.device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    train_eos(data, settings)
    if settings.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=89_996)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--full-batch-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = pathmnist_like(args.n_train)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sgd = dict(model="mlp", optimizer="sgd", lr=0.15, loss="ce", seed=0, epochs=args.epochs,
               batch_size=128, eval_every="epoch", eig_every="epoch", eig_subset=256,
               n_snapshots=2)  # fmt: skip
    gd = dict(model="mlp", optimizer="gd", lr=0.05, loss="ce", seed=0,
              steps=args.full_batch_steps, gd_train_subset=5000, eval_every=50, eig_every=50,
              eig_subset=None, n_snapshots=2)  # fmt: skip
    print(f"threads {args.threads}; devices {devices}")
    for name, kw in (("sgd epoch", sgd), (f"gd {args.full_batch_steps} steps", gd)):
        times = {}
        for dev in devices:
            if dev == "cuda":
                torch.cuda.reset_peak_memory_stats()
            times[dev], cpu = timed(data, EosSettings(**kw, device=dev))
            extra = ""
            if dev == "cuda":
                extra = f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
            print(f"{name:>16} on {dev:>4}: {times[dev]:8.1f} s wall, {cpu:8.1f} s CPU{extra}")
        if "cuda" in times:
            print(f"{name:>16}: CPU / CUDA = {times['cpu'] / times['cuda']:.1f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
