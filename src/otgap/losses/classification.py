"""Classification losses: cross-entropy (the paper) and Cohen et al.'s square loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from otgap.losses.base import Loss


def mse_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0.5 ||f(x) - onehot(y)||^2, averaged over examples (Cohen et al.'s square loss)."""
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return 0.5 * (logits - onehot).pow(2).sum(dim=-1).mean()


CROSS_ENTROPY = Loss("ce", F.cross_entropy, separable=True)
SQUARE = Loss("mse", mse_loss, separable=True)
