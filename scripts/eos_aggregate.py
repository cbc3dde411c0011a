"""One tidy table of every Edge-of-Stability run's history and one summary row per run
(rule eos_aggregate): trajectories.csv/.parquet, summary.csv and a provenance sidecar."""

import pandas as pd

from otgap.analysis.eos import read_run, run_summary, run_trajectory
from otgap.io import write_csv, write_json, write_parquet
from otgap.jobs import job
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    runs = list(smk.params.runs)
    histories, sidecars = list(smk.input.histories), list(smk.input.run_jsons)
    if not (len(runs) == len(histories) == len(sidecars)):
        raise ValueError(
            f"{len(runs)} runs but {len(histories)} histories, {len(sidecars)} run.json"
        )
    frames, rows = [], []
    for keys, hist, side in zip(runs, histories, sidecars, strict=True):
        run = read_run(hist, None, side)
        traj = run_trajectory(keys, run.history, float(run.info["threshold"]))
        frames.append(traj)
        rows.append(run_summary(traj, run.info))
    trajectories = pd.concat(frames, ignore_index=True)
    summary = pd.DataFrame(rows)
    write_csv(smk.output.trajectories, trajectories)
    write_parquet(smk.output.parquet, trajectories)
    write_csv(smk.output.summary, summary)
    n_div = int(summary["diverged"].sum())
    log(f"{len(runs)} runs, {len(trajectories)} rows; {n_div} diverged")
    write_json(
        smk.output.meta,
        {
            "n_runs": len(runs),
            "n_rows": len(trajectories),
            "columns": list(trajectories.columns),
            "summary_columns": list(summary.columns),
            "inputs": histories,
            "provenance": provenance({"runs": runs}),
        },
    )
