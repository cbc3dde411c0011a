"""Landau layer: two matrix products (otgap.models.landau) vs the source's per-sample weight tensor.

MNIST size of the Landau network's first layer: 784 -> 156, batch 128, float32. The literal version
(the second Landau post's ``forward``, transcribed below) builds ``W2`` of shape (batch, out, in) = 62.6 MB and a
batched matrix-vector product; ``LandauLayer`` computes ``cosh(5b) W (a*x) + t_dyn sinh(5b) W x``.
Both are timed (median of ``--repeats`` runs of ``--inner`` calls) for the forward pass alone and
for a training step (forward + backward). Peak memory: on CPU each variant's first call runs in a
fresh subprocess, and the peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``
just before the call) minus the resident set before it is reported; on CUDA,
``torch.cuda.max_memory_allocated`` above the memory in use before the call. The outputs are
checked to agree first. Goal: >= 5x faster, >= 10x less peak memory.

    .venv/bin/python benchmarks/landau_forward.py [--batch 128] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from otgap.models.landau import LandauLayer

IN, OUT = 784, 156


class SeedLandauForward(nn.Module):
    """The Landau post's forward, literally (parameters shared with a LandauLayer)."""

    def __init__(self, layer: LandauLayer) -> None:
        super().__init__()
        self.w, self.beta, self.t = layer.w, layer.beta, layer.t

    def forward(self, x):
        t_dynamic = self.t * torch.sigmoid(torch.mean(x, dim=-1)).unsqueeze(-1)
        w2 = self.w * (
            torch.arange(x.size(-1), dtype=torch.float, device=x.device) * torch.cosh(5 * self.beta)
            + t_dynamic * torch.sinh(5 * self.beta)
        ).unsqueeze(1)
        return torch.matmul(w2, x.unsqueeze(-1)).squeeze(-1)


def build(batch: int, device: str):
    torch.manual_seed(0)
    layer = LandauLayer(IN, OUT, 0.1).to(device)
    x = torch.rand(batch, IN, device=device)
    return {"fast": layer, "literal": SeedLandauForward(layer)}, x


def call(module, x, mode: str):
    if mode == "forward":
        with torch.no_grad():
            return module(x)
    out = module(x)
    out.square().mean().backward()
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_it(module, x, mode, device, inner, repeats) -> float:
    call(module, x, mode)  # warm-up
    runs = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(inner):
            call(module, x, mode)
        _sync(device)
        runs.append((time.perf_counter() - start) / inner)
    return statistics.median(runs)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_worker(variant: str, mode: str, batch: int, device: str) -> int:
    """Peak bytes of one first call, measured inside this (fresh) process."""
    modules, x = build(batch, device)
    module = modules[variant]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call(module, x, mode)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak resident set (VmHWM) to the current one
    before = _status_kb("VmRSS")
    call(module, x, mode)
    return (_status_kb("VmHWM") - before) * 1024


def peak_bytes(variant: str, mode: str, args) -> int:
    cmd = [sys.executable, __file__, "--worker", variant, "--mode", mode]
    cmd += ["--batch", str(args.batch), "--threads", str(args.threads), "--device", args.device]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--inner", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", choices=["fast", "literal"], help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="forward", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps({"peak": peak_worker(args.worker, args.mode, args.batch, args.device)}))
        return

    modules, x = build(args.batch, args.device)
    with torch.no_grad():
        err = float((modules["fast"](x) - modules["literal"](x)).abs().max())
        scale = float(modules["literal"](x).abs().max())
    print(
        f"Landau layer {IN} -> {OUT}, batch {args.batch}, {args.device}, "
        f"{args.threads} thread(s); max |fast - literal| = {err:.2e} (outputs up to {scale:.1f})"
    )
    w2_mb = args.batch * OUT * IN * 4 / 2**20
    print(f"the literal per-sample weight tensor alone: {w2_mb:.1f} MiB")
    for mode in ("forward", "train step"):
        key = "forward" if mode == "forward" else "train"
        t_lit = time_it(modules["literal"], x, key, args.device, args.inner, args.repeats)
        t_fast = time_it(modules["fast"], x, key, args.device, args.inner, args.repeats)
        m_lit = peak_bytes("literal", key, args)
        m_fast = peak_bytes("fast", key, args)
        print(
            f"{mode:>10}: time literal {t_lit * 1e3:8.3f} ms, two matmuls {t_fast * 1e3:8.3f} ms "
            f"-> {t_lit / t_fast:6.1f}x faster; peak memory literal {m_lit / 2**20:7.2f} MiB, "
            f"two matmuls {m_fast / 2**20:6.2f} MiB -> {m_lit / max(m_fast, 1):6.1f}x less"
        )


if __name__ == "__main__":
    main()
