"""Batch sharpness: the curvature of each mini-batch loss along its own gradient.

For a mini-batch ``B`` with loss ``L_B``, gradient ``g_B`` and Hessian ``H_B`` (all over the
trainable parameters), the directional curvature along the gradient is the Rayleigh quotient
``g_B^T H_B g_B / g_B^T g_B``. Its mean over batches drawn as the optimizer draws them is the
*batch sharpness* of Andreyev and Beneventano (arXiv 2412.20553): under SGD it is this quantity,
not the top eigenvalue of the full-batch Hessian, that rises to and then hovers at the stability
threshold ``2/eta`` (see docs/sources_eos.md). One Hessian-vector product per batch suffices:
``H_B g_B`` is the gradient of ``g_B . stop_grad(g_B)``.

As everywhere in :mod:`otgap.curvature`, the model's parameters, ``.grad``, buffers and train/eval
flags are left as found; by default the products run in eval mode (BatchNorm running statistics,
dropout off), because the Hessian of a random or batch-coupled loss is not the quantity asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .hvp import LossFn, ModelState, _batch_size, trainable_parameters

__all__ = ["BatchSharpness", "batch_rayleigh_quotients", "batch_sharpness", "batch_sharpness_stats"]


@dataclass(frozen=True)
class BatchSharpness:
    """Mean over batches of ``g^T H g / g^T g``, its standard error over batches (NaN for one
    batch), the number of batches and the per-batch quotients (float64, in batch order)."""

    mean: float
    stderr: float
    n_batches: int
    values: tuple[float, ...]


def _one_batch(model: nn.Module, params: list[Tensor], loss_fn: LossFn, x: Tensor, y: Tensor):
    _batch_size(x, y)
    loss = loss_fn(model(x), y)
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    if not torch.isfinite(loss):
        raise ValueError(
            f"the loss on a batch is not finite ({float(loss.detach())}): no curvature"
        )
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g_sq = sum((g.detach().double() ** 2).sum() for g in grads)
    if float(g_sq) == 0.0:
        return math.nan  # no direction: the quotient is undefined
    dot = sum((g * g.detach()).sum() for g in grads)
    hg = torch.autograd.grad(dot, params)  # H g (the one product of this batch)
    curv = sum((h.double() * g.detach().double()).sum() for h, g in zip(hg, grads, strict=True))
    return float(curv / g_sq)


def batch_rayleigh_quotients(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    eval_mode: bool = True,
) -> list[float]:
    """``g_B^T H_B g_B / g_B^T g_B`` for each ``(inputs, targets)`` batch (NaN where ``g_B = 0``).

    Raises ``ValueError`` for a model with no trainable parameters, no batches, a malformed batch
    or a non-finite loss; the model state is restored in every case."""
    params = [p for _, p in trainable_parameters(model)]
    if not params:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    state = ModelState(model)
    try:
        if eval_mode:
            model.eval()
        values = [_one_batch(model, params, loss_fn, x, y) for x, y in batches]
    finally:
        state.restore()
    if not values:
        raise ValueError("batch sharpness needs at least one (inputs, targets) batch, got none")
    return values


def batch_sharpness_stats(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    eval_mode: bool = True,
) -> BatchSharpness:
    """Batch sharpness with its standard error over batches (sample std / sqrt(K)).

    Batches whose gradient vanishes (quotient undefined) are left out of the mean; if every batch
    has a zero gradient the mean is NaN."""
    values = batch_rayleigh_quotients(model, loss_fn, batches, eval_mode=eval_mode)
    v = torch.tensor(values, dtype=torch.float64)
    ok = v[torch.isfinite(v)]
    k = int(ok.numel())
    mean = float(ok.mean()) if k else math.nan
    stderr = float(ok.std(unbiased=True) / math.sqrt(k)) if k > 1 else math.nan
    return BatchSharpness(mean, stderr, k, tuple(values))


def batch_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    eval_mode: bool = True,
) -> float:
    """Mean over ``batches`` of ``g_B^T H_B g_B / g_B^T g_B`` (Andreyev & Beneventano's batch
    sharpness), one Hessian-vector product per batch; see :func:`batch_sharpness_stats`."""
    return batch_sharpness_stats(model, loss_fn, batches, eval_mode=eval_mode).mean
