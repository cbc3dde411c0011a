"""The A.2 section's generated parts: macros, results table, figures (rule paper_eos)."""

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.eos import eos_macros, eos_table
from otgap.paper.provenance import caption_tail
from otgap.paper.sources import copy_atomic, read_csv_or_none
from otgap.paper.tables import figure_float

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    summary = read_csv_or_none(smk.input.summary)
    macros = eos_macros(summary)
    write_text(smk.output.macros, macros.render("A.2 numbers cited in the text (rule paper_eos)"))
    tail = caption_tail("eos_aggregate", "scripts/eos_aggregate.py", smk.input.sidecar)
    write_text(smk.output.table, eos_table(summary, provenance=tail))
    copy_atomic(smk.input.comparison, smk.output.comparison)
    copy_atomic(smk.input.multiseed, smk.output.multiseed)
    figures = figure_float(
        "generated/eos_multiseed.pdf",
        "(a) Loss and (b) sharpness $\\lambda_1$ and, for SGD and heavy ball, batch sharpness "
        "relative to the stability threshold (log axes): geometric mean over seeds with a "
        "95\\% band from 3 or more seeds, one line per seed with fewer; step 0 of "
        "preconditioned runs not drawn; dotted line: the threshold, shaded: above it. "
        "(c) Loss surface and (d) contours around the median-final-loss seed's trajectory; "
        "(e) summary (late phase: each seed's median over its last third of measurements). "
        + caption_tail("eos_figures", "scripts/eos_figures.py", smk.input.sidecar),
        "fig:eos-multiseed",
    ) + figure_float(
        "generated/eos_comparison.pdf",
        "Sharpness relative to each optimizer's stability threshold (log axis), every "
        "configuration of the first dataset, model and loss: $\\lambda_1$ solid, batch "
        "sharpness dashed; bands as in Figure~\\ref{fig:eos-multiseed}. "
        + caption_tail("eos_figures_compare", "scripts/eos_figures_compare.py", smk.input.sidecar),
        "fig:eos-comparison",
    )
    write_text(smk.output.figures_tex, figures)
    log(f"{len(macros.macros)} macros; runs: {0 if summary is None else len(summary)}")
