"""Loss landscape around one Edge-of-Stability run's trajectory, on two planes (rule eos_landscape).

Writes the loss grids, trajectory coordinates and losses of the paper's plane and of Li et al.'s
PCA plane to one small npz (no plane vectors), and a provenance sidecar. Full-batch runs are
mapped on the very samples they descended (so the trajectory's losses are the history's train
losses); minibatch runs on ``n_samples`` training samples chosen as the run chose its subsets.
"""

import time

from otgap.analysis.eos import (
    batchnorm_at_last_snapshot,
    landscape_samples,
    rebuild_run,
    run_loss,
)
from otgap.io import write_json, write_npz
from otgap.jobs import job
from otgap.landscape.trajectory import trajectory_landscape
from otgap.train.eos import resolve_device
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = dict(smk.params.landscape)
    device = resolve_device(smk.params.device)
    run, data, model = rebuild_run(smk.input.history, smk.input.snapshots, smk.input.run_json)
    idx = landscape_samples(run, data, int(p["n_samples"]))
    log(
        f"{len(run.snapshots)} snapshots of {run.snapshots.shape[1]} parameters; {len(idx)} "
        f"samples; device {device}"
    )
    model = model.to(device)
    bn_note = batchnorm_at_last_snapshot(model, run.snapshots, data.x_train[idx].to(device))
    if bn_note:
        log(bn_note)
    t0 = time.perf_counter()
    out = trajectory_landscape(
        model,
        run_loss(run.settings),
        run.snapshots,
        data.x_train[idx].to(device),
        data.y_train[idx].to(device),
        grid=int(p["grid"]),
        padding=float(p["padding"]),
        chunk_size=int(p["chunk_size"]),
    )
    work_seconds = time.perf_counter() - t0  # the part that grows with the grid
    out["steps"] = run.snapshot_steps
    write_npz(smk.output.npz, **out)
    ev = {k: out[f"{k}_explained_variance"].tolist() for k in ("paper", "pca")}
    log(f"explained variance (d1, d2): paper {ev['paper']}, pca {ev['pca']}")
    write_json(
        smk.output.meta,
        {
            "run": dict(smk.wildcards),
            "n_samples": len(idx),
            "samples": "training subset" if run.info.get("full_batch") else "first/stratified",
            "snapshots_used": int(out["snapshot_used"].sum()),
            "snapshots_total": len(run.snapshots),
            "diverged": bool(run.info.get("diverged", False)),
            "explained_variance": ev,
            "device": str(device),
            "batchnorm": bn_note or None,
            "work_seconds": round(work_seconds, 4),
            "provenance": provenance({**p, "device": smk.params.device}),
        },
    )
