"""Hessian spectrum of one Edge-of-Stability run at its start, middle and end snapshots
(rule eos_spectrum): SLQ density, Hutch++ trace and top eigenvalue on the run's eig subset."""

import time

import numpy as np

from otgap.analysis.eos import (
    hessian_spectra,
    rebuild_run,
    run_loss,
    sharpness_samples,
    spectrum_snapshot_indices,
)
from otgap.io import write_json, write_npz
from otgap.jobs import job
from otgap.train.eos import resolve_device
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = dict(smk.params.spectrum)
    device = resolve_device(smk.params.device)
    run, data, model = rebuild_run(smk.input.history, smk.input.snapshots, smk.input.run_json)
    idx = sharpness_samples(run, data)
    n = len(idx)
    rows = spectrum_snapshot_indices(run.snapshot_steps, run.snapshots)
    if not rows:
        raise ValueError("no finite snapshot in this run; nothing to measure")
    log(f"snapshots at steps {run.snapshot_steps[rows].tolist()}, {n} samples, device {device}")
    t0 = time.perf_counter()
    out = hessian_spectra(
        model.to(device),
        run_loss(run.settings),
        run.snapshots[rows],
        data.x_train[idx].to(device),
        data.y_train[idx].to(device),
        n_vectors=int(p["n_vectors"]),
        n_iter=int(p["n_iter"]),
        trace_matvecs=int(p["trace_matvecs"]),
        points=int(p["points"]),
        sigma=float(p["sigma"]),
    )
    work_seconds = time.perf_counter() - t0  # the part that grows with the products asked for
    out["steps"] = run.snapshot_steps[rows]
    out["threshold"] = np.asarray(float(run.info["threshold"]))
    out["preconditioned"] = np.asarray(bool(run.info.get("preconditioned", False)))
    write_npz(smk.output.npz, **out)
    log(f"top eigenvalues {out['top_eigenvalue'].tolist()}, traces {out['trace'].tolist()}")
    write_json(
        smk.output.meta,
        {
            "run": dict(smk.wildcards),
            "n_samples": n,
            "device": str(device),
            "work_seconds": round(work_seconds, 4),
            "provenance": provenance({**p, "device": smk.params.device}),
        },
    )
