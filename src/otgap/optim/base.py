"""What the Edge-of-Stability stage needs to know about an optimizer, beside the update itself.

An entry of ``OPTIMIZERS`` is an :class:`OptimizerSpec` subclass: it builds the torch optimizer,
says whether it takes full-batch steps, gives the stability threshold that sharpness is compared
with, and (for adaptive methods) the preconditioner under which that comparison is made. A new
optimizer is one subclass and one registry entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch


class OptimizerSpec:
    """Base class: subclasses set the class variables and implement ``_make`` and ``threshold``."""

    #: full-batch steps on the fixed training subset (True) or shuffled minibatches (False)
    full_batch: ClassVar[bool] = False
    #: sharpness is compared with the threshold under ``preconditioner`` (e.g. Adam's P_t)
    preconditioned: ClassVar[bool] = False
    #: minibatch optimizer whose stability is decided by the batch sharpness (mean over its
    #: batches of g_B^T H_B g_B / g_B^T g_B) against the same threshold (Andreyev & Beneventano,
    #: arXiv 2412.20553); the EoS stage records it beside lambda_1 for these
    batch_sharpness: ClassVar[bool] = False
    #: hyperparameters accepted besides ``lr``, with their defaults
    defaults: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def hyper(cls, **hyper: Any) -> dict[str, Any]:
        """The defaults updated with ``hyper``; an unknown name is an error that lists the known."""
        unknown = sorted(set(hyper) - set(cls.defaults))
        if unknown:
            known = ", ".join(sorted(cls.defaults)) or "none"
            raise ValueError(f"{cls.__name__}: unknown hyperparameter(s) {unknown}; known: {known}")
        return {**cls.defaults, **hyper}

    @classmethod
    def build(
        cls, params: Iterable[torch.nn.Parameter], lr: float, **hyper: Any
    ) -> torch.optim.Optimizer:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{cls.__name__}: lr must be positive and finite, got {lr}")
        return cls._make(list(params), float(lr), **cls.hyper(**hyper))

    @classmethod
    def _make(cls, params: list, lr: float, **hyper: Any) -> torch.optim.Optimizer:
        raise NotImplementedError

    @classmethod
    def threshold(cls, lr: float, **hyper: Any) -> float:
        """Largest stable sharpness of the quadratic model for this step size; NaN if not known."""
        return math.nan

    @classmethod
    def preconditioner(
        cls,
        optimizer: torch.optim.Optimizer,
        params: list[torch.Tensor],
        next_grads: list[torch.Tensor],
    ) -> list[torch.Tensor] | None:
        """Diagonal preconditioner P (one tensor per entry of ``params``) of the *next* update.

        ``next_grads`` are the gradients that update will see (the next batch's, at the current
        parameters), so P is the one that multiplies the step taken from here, as in Cohen et al.
        2022. None when the optimizer has no preconditioner.
        """
        return None
