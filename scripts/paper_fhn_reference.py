"""A.1's known-physics table for the paper (rule paper_fhn_reference): the systems stage's
booktabs tabular (systems_ode_a1_table) in a float with caption and provenance."""

from pathlib import Path

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.provenance import caption_tail
from otgap.paper.tables import table_float

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    tabular = Path(smk.input.tex).read_text()
    caption = (
        "Known physics beside the learned models. A trial-solution network that is given the "
        "system's equations solves each of the first rollouts from its last context state; each "
        "learned model is scored on the same starts and time points from its own rollouts. "
        "Mean $\\pm$ standard deviation over seeds; training seconds per seed (the reference's "
        "cover all its starts). A reference, not a competitor: no significance test. "
        + caption_tail("systems_ode_a1_table", "systems_ode_a1_table.py", smk.input.info)
    )
    write_text(smk.output.tex, table_float(tabular, caption, "tab:fhn-reference"))
    log(f"{len(tabular.splitlines())} tabular lines")
