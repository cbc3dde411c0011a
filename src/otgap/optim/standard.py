"""The optimizers of the Edge-of-Stability grid, with their stability thresholds.

Thresholds come from the quadratic model along the top Hessian eigenvector (Cohen et al. 2021,
2022): gradient descent with step ``lr`` is stable while sharpness < 2/lr; heavy-ball momentum
``v <- beta v + g, theta <- theta - lr v`` while sharpness < (2 + 2 beta)/lr; Adam with ``beta1``
while the *preconditioned* sharpness lambda_1(P^-1 H) < (2 + 2 beta1) / ((1 - beta1) lr), i.e.
38/lr at beta1 = 0.9, with P = (1 - beta1^t) diag(sqrt(v_hat) + eps). Weight decay is left out of
the thresholds (sharpness is measured on the data loss only).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from otgap.optim.base import OptimizerSpec


class GD(OptimizerSpec):
    """Full-batch gradient descent on the fixed training subset."""

    full_batch = True
    defaults = {"weight_decay": 0.0}

    @classmethod
    def _make(cls, params: list, lr: float, **hyper: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=hyper["weight_decay"])

    @classmethod
    def threshold(cls, lr: float, **hyper: Any) -> float:
        cls.hyper(**hyper)
        return 2.0 / lr


class SGD(GD):
    """Minibatch stochastic gradient descent (the paper: lr 0.15, batch 128, no momentum)."""

    full_batch = False
    batch_sharpness = True


class Momentum(OptimizerSpec):
    """Heavy-ball minibatch SGD, torch's form ``v <- beta v + g; theta <- theta - lr v``."""

    full_batch = False
    batch_sharpness = True
    defaults = {"beta": 0.9, "weight_decay": 0.0}

    @classmethod
    def _make(cls, params: list, lr: float, **hyper: Any) -> torch.optim.Optimizer:
        if not 0.0 <= hyper["beta"] < 1.0:
            raise ValueError(f"Momentum: beta must be in [0, 1), got {hyper['beta']}")
        return torch.optim.SGD(
            params, lr=lr, momentum=hyper["beta"], weight_decay=hyper["weight_decay"]
        )

    @classmethod
    def threshold(cls, lr: float, **hyper: Any) -> float:
        beta = cls.hyper(**hyper)["beta"]
        return (2.0 + 2.0 * beta) / lr


class GDMomentum(Momentum):
    """Full-batch heavy-ball gradient descent on the fixed training subset (Cohen et al. 2021's
    momentum runs): stable on a quadratic while sharpness < (2 + 2 beta)/lr."""

    full_batch = True
    batch_sharpness = False


class Adam(OptimizerSpec):
    """Adam; its sharpness is preconditioned by P_t before comparison with the threshold."""

    full_batch = False
    preconditioned = True
    defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    _torch_class = torch.optim.Adam

    @classmethod
    def _make(cls, params: list, lr: float, **hyper: Any) -> torch.optim.Optimizer:
        return cls._torch_class(
            params,
            lr=lr,
            betas=(hyper["beta1"], hyper["beta2"]),
            eps=hyper["eps"],
            weight_decay=hyper["weight_decay"],
        )

    @classmethod
    def threshold(cls, lr: float, **hyper: Any) -> float:
        beta1 = cls.hyper(**hyper)["beta1"]
        if not 0.0 <= beta1 < 1.0:
            return math.nan
        return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)

    @classmethod
    def preconditioner(
        cls,
        optimizer: torch.optim.Optimizer,
        params: list[torch.Tensor],
        next_grads: list[torch.Tensor],
    ) -> list[torch.Tensor] | None:
        """P of the next update, from the gradients that update will use (see the base class)."""
        from otgap.curvature import adam_next_preconditioner

        return adam_next_preconditioner(optimizer, params, next_grads)


class AdamW(Adam):
    """AdamW (decoupled weight decay, torch default 0.01); thresholds as for Adam."""

    defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    _torch_class = torch.optim.AdamW


class AdamFullBatch(Adam):
    """Full-batch Adam on the fixed training subset (Cohen et al. 2022): its preconditioned
    sharpness hovers at (2 + 2 beta1)/((1 - beta1) lr) = 38/lr."""

    full_batch = True
