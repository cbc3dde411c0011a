"""The A.1 section's generated parts: macros, results table, figure 2 with caption (rule paper_fhn)."""

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.fhn import fhn_macros, fhn_table
from otgap.paper.provenance import caption_tail
from otgap.paper.sources import copy_atomic, read_csv_or_none, read_lyapunov
from otgap.paper.tables import figure_float

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = smk.params
    stats = read_csv_or_none(smk.input.stats)
    conditions = [dict(c) for c in p.conditions]
    macros = fhn_macros(
        stats,
        system=p.system,
        conditions=conditions,
        models=list(p.models),
        reference=p.reference,
        lyapunov=read_lyapunov(smk.input.lyapunov),
        n_seeds=len(p.seeds),
    )
    write_text(smk.output.macros, macros.render("A.1 numbers cited in the text (rule paper_fhn)"))
    table = fhn_table(
        stats,
        system=p.system,
        metrics=list(p.metrics),
        models=list(p.models),
        conditions=[c["name"] for c in conditions],
        reference=p.reference,
        provenance=caption_tail("fhn_aggregate", "scripts/fhn_aggregate.py", smk.input.sidecar),
    )
    write_text(smk.output.table, table)
    copy_atomic(smk.input.figure, smk.output.figure)
    caption = (
        f"Figure 2 of the paper for system \\texttt{{\\FhnSystem}}, condition "
        f"\\texttt{{{p.focus_condition.replace('_', '-')}}} in panels A, B, E and F. "
        + caption_tail("fhn_figure", "scripts/fhn_figure.py", smk.input.sidecar)
    )
    write_text(smk.output.figure_tex, figure_float("generated/fhn_figure2.pdf", caption, "fig:fhn"))
    log(f"{len(macros.macros)} macros; stats rows: {0 if stats is None else len(stats)}")
