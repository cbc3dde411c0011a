"""Optimizers by config name, each with its stability threshold (see ``base.OptimizerSpec``).

Entries are resolved lazily, so importing this package (e.g. for ``format_lr`` in the Snakefile)
does not import torch. Adding an optimizer is one ``OptimizerSpec`` subclass and one entry here.
"""

from otgap.optim.lr import format_lr, parse_lr
from otgap.registry import Registry

OPTIMIZERS = Registry(
    "optimizer",
    {
        "gd": "otgap.optim.standard:GD",
        "sgd": "otgap.optim.standard:SGD",
        "momentum": "otgap.optim.standard:Momentum",
        "adam": "otgap.optim.standard:Adam",
        "adamw": "otgap.optim.standard:AdamW",
        "langevin": "otgap.optim.langevin:LangevinSpec",
        "biostatis": "otgap.optim.biostatis:Biostatis",
        "biostatis_dynamo": "otgap.optim.biostatis:BiostatisDynamo",
        "gd_momentum": "otgap.optim.standard:GDMomentum",
        "adam_fb": "otgap.optim.standard:AdamFullBatch",
    },
)

__all__ = ["OPTIMIZERS", "format_lr", "parse_lr"]
