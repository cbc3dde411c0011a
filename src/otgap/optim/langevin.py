"""The Langevin optimizer of the Landau network's posts, as a ``torch.optim.Optimizer``, and its stability limit.

Update per parameter (docs/sources.md#the-landau-network-and-the-langevin-optimizer)::

    v     <- (1 - damping) v - lr * grad + sqrt(2 * damping * lr * T) * N(0, 1)
    theta <- theta + v

The noise comes from the optimizer's own ``torch.Generator`` (seeded from ``seed``, or from
torch's global generator when ``seed`` is None, so ``seed_everything`` makes runs reproducible).
Its state is part of :meth:`Langevin.state_dict`, so a resumed run draws the same noise.

One departure from the source's code (the second post), on purpose: its loop adds each parameter's velocity through
``param.data`` before taking the next parameter's gradient from the same graph, so later gradients
that read a saved parameter see updated values. Here all parameters move on one gradient, as the
stated equations say (``tests/test_langevin.py`` shows where the two agree exactly).

Stability limit (temperature 0, a quadratic with curvature ``lam`` along an eigenvector, so
``grad = lam * theta``). With ``gamma = damping`` and ``eta = lr`` one step maps ``(v, theta)`` by::

    [v']       [1 - gamma   -eta lam    ] [v    ]
    [theta'] = [1 - gamma   1 - eta lam ] [theta]

whose trace is ``2 - gamma - eta lam`` and determinant ``1 - gamma``. Both eigenvalues lie inside
the unit circle iff (Jury) ``|det| < 1``, ``1 - tr + det = eta lam > 0`` and
``1 + tr + det = 4 - 2 gamma - eta lam > 0``. So for ``0 < gamma <= 1`` the iteration is stable
exactly while ``lam < (4 - 2 gamma) / lr``: heavy ball's ``(2 + 2 beta)/lr`` with
``beta = 1 - gamma``. At ``gamma = 0`` the determinant is 1 and it is at best marginally stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from otgap.optim.base import OptimizerSpec

#: the source's settings (the second post's table)
SEED_LR = 1e-2
SEED_DAMPING = 1e-3
SEED_TEMPERATURE = 8e-3


def _check(lr: float, damping: float, temperature: float) -> None:
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"Langevin: invalid learning rate lr={lr}; it must be positive and finite")
    if not 0.0 <= damping <= 1.0:
        raise ValueError(f"Langevin: invalid damping={damping}; it must lie in [0, 1]")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(
            f"Langevin: invalid temperature={temperature}; it must be non-negative and finite"
        )


class Langevin(torch.optim.Optimizer):
    """Damped velocity update with temperature noise (see the module docstring)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = SEED_LR,
        damping: float = SEED_DAMPING,
        temperature: float = SEED_TEMPERATURE,
        seed: int | None = None,
    ) -> None:
        _check(lr, damping, temperature)
        super().__init__(params, {"lr": lr, "damping": damping, "temperature": temperature})
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(seed))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, damping, temp = group["lr"], group["damping"], group["temperature"]
            _check(lr, damping, temp)
            scale = math.sqrt(2.0 * damping * lr * temp)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                v.mul_(1.0 - damping).add_(p.grad, alpha=-lr)
                if scale > 0:
                    noise = torch.randn(p.shape, generator=self.generator, dtype=p.dtype)
                    v.add_(noise.to(p.device), alpha=scale)
                p.add_(v)
        return loss

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        generator = state_dict.pop("generator", None)
        if generator is None:
            raise ValueError(
                "Langevin.load_state_dict: the state has no 'generator' entry; it was not saved "
                "by Langevin.state_dict, so the noise could not continue where it stopped"
            )
        super().load_state_dict(state_dict)
        self.generator.set_state(generator.clone())


class LangevinSpec(OptimizerSpec):
    """``langevin`` in ``OPTIMIZERS``: minibatch steps, threshold ``(4 - 2 damping) / lr``."""

    full_batch = False
    defaults = {"damping": SEED_DAMPING, "temperature": SEED_TEMPERATURE}

    @classmethod
    def _make(cls, params: list, lr: float, **hyper: Any) -> torch.optim.Optimizer:
        return Langevin(params, lr=lr, damping=hyper["damping"], temperature=hyper["temperature"])

    @classmethod
    def threshold(cls, lr: float, **hyper: Any) -> float:
        damping = cls.hyper(**hyper)["damping"]
        if not 0.0 < damping <= 1.0:
            return math.nan  # damping 0: marginal at best, no strict limit
        return (4.0 - 2.0 * damping) / lr
