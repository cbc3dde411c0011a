"""Fetch and verify one MNIST IDX file or the CIFAR-10 archive (local rules mnist_download,
cifar10_download in workflow/rules/data.smk). A verified file already there is kept as is."""

from pathlib import Path

from otgap.data.cifar10 import download_cifar10
from otgap.data.mnist import download_mnist
from otgap.jobs import job

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    dataset, timeout = smk.params.dataset, smk.params.timeout
    outputs = sorted(Path(p) for p in smk.output)
    if dataset == "mnist":
        names = tuple(p.name for p in outputs)
        paths = sorted(download_mnist(outputs[0].parent, files=names, timeout=timeout).values())
    elif dataset == "cifar10":
        paths = [download_cifar10(outputs[0].parent, timeout=timeout)]
    else:
        raise ValueError(f"params.dataset must be 'mnist' or 'cifar10', got {dataset!r}")
    if paths != outputs:
        raise RuntimeError(f"fetched {paths}, but the rule declares {outputs}")
    for path in paths:
        log(f"{path} ready ({path.stat().st_size / 1e6:.1f} MB)")
