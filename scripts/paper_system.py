"""One other system's section from its result tables (rule paper_system)."""

from pathlib import Path

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.provenance import caption_tail
from otgap.paper.systems import system_section

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    tables = [str(t) for t in smk.input.tables]
    makers = dict(smk.params.makers)
    tails = []
    for t in tables:
        # the table's sidecar: <stem>.json beside it, else the first json in its folder
        side = Path(t).with_suffix(".json")
        if not side.is_file():
            side = next(iter(sorted(Path(t).parent.glob("*.json"))), None)
        rule, script = makers.get(t, ("unknown", "unknown"))
        tails.append(caption_tail(rule, Path(script).name, side))
    write_text(smk.output.tex, system_section(smk.wildcards.system, tables, tails))
    log(f"{len(tables)} tables")
