"""The Landau comparison table, CSV and booktabs LaTeX (rule systems_landau_table)."""

import pandas as pd

from otgap.io import write_csv, write_json, write_text
from otgap.jobs import job
from otgap.plots.landau import noise_figure
from otgap.tables.landau import comparison_table, summarise
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    runs = pd.concat([pd.read_csv(p) for p in smk.input.runs], ignore_index=True)
    timing = pd.concat([pd.read_csv(p) for p in smk.input.timing], ignore_index=True)
    runs = runs.merge(timing, on=["model", "optimizer", "seed"], how="left", validate="1:1")
    summary = summarise(runs)
    write_csv(smk.output.csv, summary)
    write_text(smk.output.tex, comparison_table(summary))
    noise_figure(runs, smk.output.noise_pdf, smk.output.noise_png)
    write_json(smk.output.sidecar, provenance({"inputs": list(smk.input.runs)}))
    for r in summary.itertuples():
        log(
            f"{r.dataset} {r.model}/{r.optimizer}: {100 * r.test_acc_mean:.2f} +- "
            f"{100 * r.test_acc_std:.2f} % (claim {r.claim_acc}) {r.verdict}"
        )
