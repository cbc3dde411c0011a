"""BiostatisV6 vs AdamW from the EoS runs: per-run CSV, comparison CSV and booktabs table
(rule biostatis_table)."""

import pandas as pd
import torch

from otgap.io import read_json, write_csv, write_text
from otgap.jobs import job
from otgap.tables.biostatis import compare, latex_table, run_record, with_claims

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    runs = list(smk.params.runs)
    files = zip(smk.input.history, smk.input.run_json, smk.input.model, strict=True)
    records = []
    for run, (history, run_json, model) in zip(runs, files, strict=True):
        state = torch.load(model, map_location="cpu", weights_only=True)
        records.append(run_record(run, pd.read_csv(history), read_json(run_json), state))
    per_run = pd.DataFrame.from_records(records)
    table = with_claims(compare(per_run))
    write_csv(smk.output.runs, per_run)
    write_csv(smk.output.csv, table)
    write_text(smk.output.tex, latex_table(table))
    log(f"{len(per_run)} runs, {len(table) - 1} comparisons with AdamW")
