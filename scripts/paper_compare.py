"""'What the corrections change': this run beside the original-settings run (rule paper_compare)."""

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.compare import comparison_macros, comparison_table
from otgap.paper.provenance import caption_tail
from otgap.paper.sources import first, read_csv_or_none, read_lyapunov
from otgap.tables.latex import tex_escape

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = smk.params
    inp = smk.input
    other_lyap = first(getattr(inp, "other_lyapunov", None))
    runs = {
        p.this_run: {
            "fhn_stats": read_csv_or_none(inp.fhn_stats),
            "eos_summary": read_csv_or_none(inp.eos_summary),
            "lyapunov": read_lyapunov(inp.lyapunov),
            "has_lyapunov": True,
        },
        p.other_run: {
            "fhn_stats": read_csv_or_none(getattr(inp, "other_fhn_stats", None)),
            "eos_summary": read_csv_or_none(getattr(inp, "other_eos_summary", None)),
            "lyapunov": read_lyapunov(other_lyap),
            "has_lyapunov": other_lyap is not None,
        },
    }
    tail = caption_tail("paper_compare", "scripts/paper_compare.py", inp.sidecar)
    table = comparison_table(
        runs,
        models=list(p.models),
        condition=p.condition,
        optimizers=list(p.optimizers),
        provenance=tail,
    )
    other = runs[p.other_run]
    if other["fhn_stats"] is None and other["eos_summary"] is None:
        # no current reference result of that run: no table, one sentence on how to make one
        run = tex_escape(p.other_run)
        why = tex_escape(getattr(p, "reference_status", "no reference result kept"))
        table = (
            f"No current reference result of the original-settings run \\texttt{{{run}}} is kept "
            f"in \\path{{docs/reference/{p.other_run}/}} ({why}), so "
            "the comparison table is omitted; to make it, run the workflow with "
            f"\\texttt{{-{{}}-configfile}} \\path{{config/{p.other_run}.yaml}} and keep its summary "
            "tables with \\texttt{python -m otgap.paper.reference keep} "
            f"\\path{{results/{p.other_run}}} \\path{{docs/reference/{p.other_run}}} "
            f"\\texttt{{-{{}}-config}} \\path{{config/{p.other_run}.yaml}}.\n"
        )
    write_text(smk.output.table, table)
    write_text(smk.output.macros, comparison_macros(runs, p.other_run).render("rule paper_compare"))
    log(f"other run '{p.other_run}' present: {runs[p.other_run]['fhn_stats'] is not None}")
