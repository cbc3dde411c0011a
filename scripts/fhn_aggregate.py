"""Collect every A.1 run into one tidy table and compute statistics over seeds (rule fhn_aggregate)."""

from otgap.analysis.fhn import metrics_frame, statistics, tuning_frame
from otgap.io import read_json, write_csv, write_json, write_parquet
from otgap.jobs import job
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    runs = list(smk.params.runs)
    paths = list(smk.input.metrics)
    if len(runs) != len(paths):
        raise ValueError(f"{len(runs)} run keys but {len(paths)} metrics files")
    run_paths = list(smk.input.run_json)
    if len(run_paths) != len(paths):
        raise ValueError(f"{len(paths)} metrics files but {len(run_paths)} run.json files")
    frame = metrics_frame(
        ((keys, read_json(p)) for keys, p in zip(runs, paths, strict=True)),
        runs=[read_json(p) for p in run_paths],
    )
    stats = statistics(frame, reference=smk.params.reference)
    # the lr choices of the tuned cells (fhn.train.tuning): grid, scores and choice per cell
    tuning = tuning_frame([read_json(p) for p in smk.input.tuning])
    write_csv(smk.output.tuning, tuning)
    write_csv(smk.output.csv, frame)
    write_parquet(smk.output.parquet, frame)
    write_csv(smk.output.stats, stats)
    write_json(
        smk.output.meta,
        {
            "n_runs": len(frame),
            "reference": smk.params.reference,
            "columns": list(frame.columns),
            "provenance": provenance({"runs": runs, "reference": smk.params.reference}),
        },
    )
    log(f"{len(frame)} runs, {len(stats)} statistics rows")
