"""Training infrastructure shared by every stage: the loop, checkpoints, seeding, provenance.

Attributes load lazily, so ``otgap.train.provenance`` can be used by jobs that never import torch.
"""

import importlib

_EXPORTS = {
    "LoopResult": "otgap.train.loop",
    "Preempted": "otgap.train.loop",
    "clear_checkpoint": "otgap.train.loop",
    "train_loop": "otgap.train.loop",
    "rng_state": "otgap.train.determinism",
    "seed_everything": "otgap.train.determinism",
    "set_rng_state": "otgap.train.determinism",
    "params_hash": "otgap.train.provenance",
    "provenance": "otgap.train.provenance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'otgap.train' has no attribute '{name}'")
