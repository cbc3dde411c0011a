"""Training losses of the Edge-of-Stability stage by config name (``eos.losses``).

Each entry is a :class:`otgap.losses.base.Loss`: a callable ``loss(outputs, labels) -> scalar``
plus a ``separable`` flag. A separable loss is a mean of per-sample terms, so it may be computed
on chunks of samples and recombined (evaluation, gradient norms, chunked Hessian-vector
products); a loss that couples samples (e.g. a batch-level penalty) sets ``separable=False`` and
is then always computed on its whole batch.

Adding a loss is one object and one entry: write ``MY_LOSS = Loss("my_loss", fn, separable=...)``
in a module under ``otgap/losses/`` and add ``"my_loss": "otgap.losses.mymodule:MY_LOSS"`` here;
then list ``my_loss`` in ``eos.losses`` (or in one optimizer entry's ``losses``). Entries are
resolved lazily, so importing this package (the workflow does, to check names) imports no torch.
"""

from otgap.registry import Registry

LOSSES = Registry(
    "loss",
    {
        "ce": "otgap.losses.classification:CROSS_ENTROPY",
        "mse": "otgap.losses.classification:SQUARE",
        # the Landau network's loss: couples the samples of a batch (not separable)
        "landau": "otgap.models.landau:LANDAU_LOSS",
    },
)

__all__ = ["LOSSES"]
