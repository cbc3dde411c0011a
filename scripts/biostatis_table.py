"""BiostatisV6 vs AdamW from the EoS runs: per-run CSV, comparison CSV and booktabs table
(rule biostatis_table)."""

import pandas as pd
import torch

from otgap.io import read_json, write_csv, write_text
from otgap.jobs import job
from otgap.plots.biostatis import learning_curves
from otgap.tables.biostatis import compare, latex_table, run_record, with_claims

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    runs = list(smk.params.runs)
    files = zip(smk.input.history, smk.input.run_json, smk.input.model, strict=True)
    records, curves = [], []
    for run, (history, run_json, model) in zip(runs, files, strict=True):
        state = torch.load(model, map_location="cpu", weights_only=True)
        frame = pd.read_csv(history)
        records.append(run_record(run, frame, read_json(run_json), state))
        curves.append(
            frame.assign(optimizer=run["optimizer"], lr=float(run["lr"]), seed=run["seed"])
        )
    per_run = pd.DataFrame.from_records(records)
    arm_files = list(getattr(smk.input, "arms", []))
    arms = [pd.read_csv(p) for p in arm_files]
    curves += [pd.read_csv(str(p).replace("runs.csv", "history.csv")) for p in arm_files]
    if arms:  # lr-matched AdamW arm and lr sweep (rule biostatis_arms)
        per_run = pd.concat([per_run, *arms], ignore_index=True)
        per_run["matched_to"] = per_run["matched_to"].fillna("")
    margin = float(getattr(smk.params, "margin", 1.0))
    table = with_claims(compare(per_run, margin=margin))
    write_csv(smk.output.runs, per_run)
    write_csv(smk.output.csv, table)
    write_text(smk.output.tex, latex_table(table))
    if "curves_png" in smk.output.keys():
        learning_curves(
            pd.concat(curves, ignore_index=True), smk.output.curves_pdf, smk.output.curves_png
        )
    log(f"{len(per_run)} runs, {len(table) - 1} comparisons with AdamW")
