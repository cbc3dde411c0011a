"""The lr-matched AdamW arm's lr from BiostatisV6's recorded effective gain (rule
biostatis_matched_lr): lr_V6 x the mean over seeds of its run-mean gain h e."""

from otgap.analysis.biostatis import matched_lr
from otgap.io import read_json, write_json
from otgap.jobs import job
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    out = matched_lr([read_json(p) for p in smk.input.v6])
    write_json(smk.output.json, {**out, "inputs": list(smk.input.v6), "provenance": provenance()})
    log(
        f"BiostatisV6 lr {out['v6_lr']:g} x mean gain {out['effective_gain']:.6f} "
        f"= matched AdamW lr {out['matched_lr']:.6g}"
    )
