"""Write the run's manifest: path, size and SHA-256 of every result file (rule manifest)."""

from otgap.jobs import job
from otgap.manifest import write_manifest

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    entries = write_manifest(smk.params.root, smk.output.tsv)
    log(f"{len(entries)} files, {sum(e.size for e in entries)} bytes -> {smk.output.tsv}")
