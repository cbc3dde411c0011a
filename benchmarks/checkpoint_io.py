"""Checkpoint size over a run, and the checkpoint I/O of the paper's EoS stage.

Baseline: the earlier layout, where every checkpoint carried all parameter snapshots taken
so far (``extras["snapshots"]``), so it grew with the run. Now the snapshots go to an append-only
side file and the checkpoint holds only what resuming needs.

Measured: the quick config's EoS SGD job (digits, MLP 64-200-200-10, batch 64, 10 epochs, 20
snapshots), checkpointed every epoch. After each checkpoint the script also writes the baseline
layout of the same state (this checkpoint plus the snapshots in the side file so far) to memory,
so both layouts are measured in one run. Projected: the paper config's EoS stage (PathMNIST MLP
2352-256-128-9, 5 seeds, per-epoch checkpoints and snapshots), from its parameter count and the
measured bytes per stored vector.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/checkpoint_io.py
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import torch

from otgap.config import load_config
from otgap.data.digits import load_digits
from otgap.train.eos import EosSettings, train_eos
from otgap.train.loop import CHECKPOINT_NAME, SnapshotLog

REPO = Path(__file__).resolve().parents[1]


def baseline_size(ckpt: Path, snap_file: Path) -> int:
    """Bytes of the pre-issue-9 checkpoint of the same state: snapshots inside the checkpoint."""
    payload = torch.load(ckpt, map_location="cpu", weights_only=False)
    log = SnapshotLog()
    n = int(payload["snapshot_bytes"])
    full = snap_file.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "s.bin"
        part.write_bytes(full[:n])
        log.path = part
        payload["extras"] = {**payload["extras"], "snapshots": log.load()}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getbuffer().nbytes


def measure_quick() -> dict[str, float]:
    cfg = load_config(REPO / "config/config.yaml", REPO / "config/quick.yaml")
    eos = cfg["eos"]
    entry = next(o for o in eos["optimizers"] if o["name"] == "sgd")
    s = EosSettings(
        model="mlp", optimizer="sgd", lr=float(entry["lrs"][0]), loss=eos["losses"][0], seed=0,
        model_hyper=eos["model_hyper"]["mlp"], epochs=entry["epochs"],
        batch_size=entry["batch_size"], eval_every="epoch", eig_every="epoch",
        eig_subset=eos["eig_subset"], n_snapshots=eos["n_snapshots"], checkpoint_every="epoch",
    )  # fmt: skip
    data = load_digits()
    new, old = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp)
        last_mtime = [0.0]

        def record(step: int) -> None:
            path = ckpt / CHECKPOINT_NAME
            if path.exists() and path.stat().st_mtime_ns != last_mtime[0]:
                last_mtime[0] = path.stat().st_mtime_ns
                new.append(path.stat().st_size)
                old.append(baseline_size(path, ckpt / "snapshots.bin"))

        res = train_eos(data, s, checkpoint_dir=ckpt, callback=record)
    return {
        "n_params": res.summary["n_params"],
        "n_checkpoints": len(new),
        "new_first": new[0], "new_last": new[-1], "new_total": sum(new),
        "old_first": old[0], "old_last": old[-1], "old_total": sum(old),
    }  # fmt: skip


def project_paper(bytes_per_float: float) -> dict[str, float]:
    """Checkpoint bytes written by the paper config's EoS stage, both layouts."""
    cfg = load_config(REPO / "config/config.yaml")
    eos = cfg["eos"]
    hidden = eos["model_hyper"]["mlp"]["hidden"]
    widths = [3 * 28 * 28, *hidden, 9]  # PathMNIST 28x28 RGB, 9 classes
    p = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    vec = p * bytes_per_float
    steps_per_epoch = math.ceil(89996 / 128)  # PathMNIST training split at batch 128
    states = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2, "gd": 0}  # optimizer buffers
    warm = {"adam": 2, "adamw": 2}  # warm-start vectors: raw (+ preconditioned)
    old_total = new_total = 0.0
    worst_run = 0.0
    for entry in eos["optimizers"]:
        name = entry["name"]
        if "steps" in entry:
            total = entry["steps"]
            every = entry.get("checkpoint_every", total)
        else:
            total = entry["epochs"] * steps_per_epoch
            every = steps_per_epoch
        snap_steps = sorted(
            {round(s) for s in torch.linspace(0, total, eos["n_snapshots"]).tolist()}
        )
        base = vec * (1 + states[name] + warm.get(name, 1))
        run_old = run_new = 0.0
        for k in range(every, total, every):
            held = sum(1 for s in snap_steps if s < k)
            run_old += base + held * vec
            run_new += base
        run_new += len(snap_steps) * vec  # the side file, written once
        runs = len(entry["lrs"]) * len(eos["seeds"])
        old_total += runs * run_old
        new_total += runs * run_new
        worst_run = max(worst_run, run_old)
    return {"n_params": p, "old_total": old_total, "new_total": new_total, "worst_run": worst_run}


def main() -> None:
    torch.set_num_threads(1)
    q = measure_quick()
    mb = 1e6
    print(f"quick EoS SGD job: {q['n_params']} parameters, {q['n_checkpoints']} checkpoints")
    print(
        f"  checkpoint size, first -> last: baseline {q['old_first'] / mb:.3f} -> "
        f"{q['old_last'] / mb:.3f} MB (x{q['old_last'] / q['old_first']:.2f}); now "
        f"{q['new_first'] / mb:.3f} -> {q['new_last'] / mb:.3f} MB "
        f"(x{q['new_last'] / q['new_first']:.3f})"
    )
    print(
        f"  checkpoint bytes written over the run: baseline {q['old_total'] / mb:.2f} MB, now "
        f"{q['new_total'] / mb:.2f} MB (ratio {q['old_total'] / q['new_total']:.2f})"
    )
    paper = project_paper(4.0)
    gb = 1e9
    print(f"paper EoS stage (projected, {paper['n_params']} parameters per vector):")
    print(
        f"  checkpoint I/O: baseline {paper['old_total'] / gb:.1f} GB, now "
        f"{paper['new_total'] / gb:.1f} GB incl. snapshot files "
        f"(ratio {paper['old_total'] / paper['new_total']:.1f}); largest run before: "
        f"{paper['worst_run'] / gb:.2f} GB"
    )


if __name__ == "__main__":
    main()
