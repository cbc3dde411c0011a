"""Train ResNet-18 on CIFAR-10 with one optimizer and seed (rule biostatis_cifar_train)."""

import torch

from otgap.io import atomic_path, write_csv, write_json
from otgap.jobs import job
from otgap.train.cifar import CifarSettings, train_cifar
from otgap.train.loop import clear_checkpoint
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    from otgap.data.cifar10 import load_cifar10  # the data stage's loader (checksum-verified)

    settings = CifarSettings(**dict(smk.params.settings))
    data = load_cifar10(smk.params.root)
    log(f"CIFAR-10: {len(data.x_train)} train / {len(data.x_test)} test images")
    history, summary, state = train_cifar(
        data, settings, checkpoint_dir=smk.params.checkpoint_dir, log=log
    )
    log(
        f"{summary['steps_done']}/{summary['steps']} steps on {summary['device']}, "
        f"{summary['train_seconds']:.1f} s training, final test accuracy "
        f"{history['test_acc'].iloc[-1]:.4f}"
    )
    write_csv(smk.output.history, history)
    with atomic_path(smk.output.model) as tmp:
        torch.save(state, tmp)
    write_json(
        smk.output.run_json,
        {**summary, "provenance": provenance({"settings": dict(smk.params.settings)})},
    )
    clear_checkpoint(smk.params.checkpoint_dir)
