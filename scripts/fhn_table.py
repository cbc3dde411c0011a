"""The A.1 summary table in LaTeX (rule fhn_table)."""

import pandas as pd

from otgap.io import write_text
from otgap.jobs import job
from otgap.tables.fhn import summary_table

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    stats = pd.read_csv(smk.input.stats)
    tex = summary_table(
        stats,
        metrics=list(smk.params.metrics),
        models=list(smk.params.models),
        conditions=list(smk.params.conditions),
        reference=smk.params.reference,
        exclude_systems=list(smk.params.exclude_systems),
        tuning=pd.read_csv(smk.input.tuning) if "tuning" in smk.input.keys() else None,
    )
    write_text(smk.output.tex, tex)
    log(f"{len(stats)} statistics rows tabulated")
