"""The Edge-of-Stability summary table in LaTeX (rule eos_table)."""

import pandas as pd

from otgap.io import write_text
from otgap.jobs import job
from otgap.tables.eos import summary_table

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    summary = pd.read_csv(smk.input.summary)
    write_text(smk.output.tex, summary_table(summary))
    log(f"{len(summary)} runs tabulated")
