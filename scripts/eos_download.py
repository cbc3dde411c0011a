"""Fetch one MedMNIST npz into the data cache and verify its MD5 (local rule eos_download)."""

from pathlib import Path

from otgap.data.medmnist import download_medmnist
from otgap.jobs import job

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    out = Path(smk.output.npz)
    path = download_medmnist(
        smk.params.medmnist["flag"],
        smk.params.medmnist["size"],
        out.parent,
        md5=smk.params.md5,
        timeout=smk.params.timeout,
    )
    if path != out:
        raise RuntimeError(f"downloaded to '{path}', but the rule declares '{out}'")
    log(f"{path} ready ({path.stat().st_size / 1e6:.1f} MB)")
