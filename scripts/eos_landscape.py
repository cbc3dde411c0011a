"""Loss landscape around one Edge-of-Stability run's trajectory, on two planes (rule eos_landscape).

Writes the loss grids, trajectory coordinates and losses of the paper's plane and of Li et al.'s
PCA plane to one small npz (no plane vectors), and a provenance sidecar.
"""

from otgap.analysis.eos import rebuild_run, run_loss
from otgap.io import write_json, write_npz
from otgap.jobs import job
from otgap.landscape.trajectory import trajectory_landscape
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = dict(smk.params.landscape)
    run, data, model = rebuild_run(smk.input.history, smk.input.snapshots, smk.input.run_json)
    n = min(int(p["n_samples"]), int(run.info.get("train_size", len(data.x_train))))
    log(f"{len(run.snapshots)} snapshots of {run.snapshots.shape[1]} parameters; {n} samples")
    out = trajectory_landscape(
        model,
        run_loss(run.settings),
        run.snapshots,
        data.x_train[:n],
        data.y_train[:n],
        grid=int(p["grid"]),
        padding=float(p["padding"]),
        chunk_size=int(p["chunk_size"]),
    )
    out["steps"] = run.snapshot_steps
    write_npz(smk.output.npz, **out)
    ev = {k: out[f"{k}_explained_variance"].tolist() for k in ("paper", "pca")}
    log(f"explained variance (d1, d2): paper {ev['paper']}, pca {ev['pca']}")
    write_json(
        smk.output.meta,
        {
            "run": dict(smk.wildcards),
            "n_samples": n,
            "snapshots_used": int(out["snapshot_used"].sum()),
            "snapshots_total": len(run.snapshots),
            "diverged": bool(run.info.get("diverged", False)),
            "explained_variance": ev,
            "provenance": provenance(p),
        },
    )
