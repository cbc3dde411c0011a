"""Compile the paper (rule paper_pdf): sources and generated parts into a clean build folder,
latexmk with SOURCE_DATE_EPOCH, the PDF copied atomically to its declared output."""

from otgap.jobs import job
from otgap.paper.assemble import assemble_build_dir
from otgap.paper.build import compile_pdf, require_tex
from otgap.paper.sources import copy_atomic

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = smk.params
    require_tex()  # first: a missing TeX says what to install, before any work
    build = assemble_build_dir(
        p.build_dir,
        sources=[str(s) for s in smk.input.sources],
        generated=[str(g) for g in smk.input.generated],
        systems=list(p.systems),
    )
    pdf = compile_pdf(build, source_date_epoch=int(p.source_date_epoch))
    copy_atomic(pdf, smk.output.pdf)
    log(f"built {smk.output.pdf} in {build}")
