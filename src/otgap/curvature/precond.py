"""Diagonal preconditioners (Adam) and the stability thresholds they are compared against.

Preconditioned sharpness is ``lambda_1(P^{-1/2} H P^{-1/2})`` (same spectrum as ``P^{-1} H``) for
a positive diagonal ``P``. For Adam/AdamW, following Cohen et al. 2022 ("Adaptive gradient
methods at the edge of stability", arXiv 2207.14484), the update is
``theta -= lr * P_t^{-1} m_t`` with ``m_t`` the un-corrected first moment and

    P_t = (1 - beta1^t) * diag(sqrt(v_hat_t) + eps),   v_hat_t = v_t / (1 - beta2^t),

(``v_t`` replaced by its running maximum under ``amsgrad``). On a quadratic with frozen ``P``
this is heavy-ball momentum on ``P^{-1} H`` with step ``lr (1 - beta1)``, which is stable while
the preconditioned sharpness is below ``(2 + 2 beta1) / ((1 - beta1) lr)`` (= 38/lr for 0.9).

Thresholds on the (plain) sharpness for one quadratic direction of curvature ``a``:
gradient descent ``2/lr``; heavy-ball momentum ``beta`` ``(2 + 2 beta)/lr``; Nesterov momentum
``(2 + 2 beta) / (lr (1 + 2 beta))``. ``torch.optim.SGD`` with ``dampening`` d has an effective
step ``lr (1 - d)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

from .lanczos import MatVec


def _adam_groups(optimizer: torch.optim.Optimizer, params: Iterable[Tensor] | None):
    group_of = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            group_of[p] = group
    wanted = list(group_of) if params is None else [p for p in params if p.requires_grad]
    for i, p in enumerate(wanted):
        if p not in group_of:
            raise ValueError(f"parameter {i} (shape {tuple(p.shape)}) is not in the optimizer")
    return wanted, group_of


def adam_next_preconditioner(
    optimizer: torch.optim.Optimizer,
    params: Iterable[Tensor],
    next_grads: Sequence[Tensor],
) -> list[Tensor]:
    """Diagonal of ``P_{t+1}``, the preconditioner of the update the optimizer takes *next*.

    After ``t`` steps the parameters are ``theta_t`` while ``v_t`` holds squared gradients up to
    ``theta_{t-1}``: the ``P_t`` built from it is the one the *last* update applied. Cohen et al.
    2022 compare ``H(theta_t)`` with the preconditioner that acts on it, the one of the next step:
    ``v_{t+1} = beta2 v_t + (1 - beta2) g_{t+1}^2`` with ``g_{t+1}`` the gradient that step sees
    (``next_grads``: the next batch's gradient at ``theta_t``, before weight decay), and
    ``P_{t+1} = (1 - beta1^{t+1}) (sqrt(v_{t+1} / (1 - beta2^{t+1})) + eps)``. Coupled weight
    decay (``torch.optim.Adam``'s ``weight_decay``) is added to the gradient as torch does;
    decoupled decay (AdamW) does not enter ``v``; ``amsgrad`` takes the running maximum. Defined
    before the first step too (``t = 0``: ``P_1 = (1 - beta1)(|g_1| + eps)``). The optimizer's
    state is not changed.
    """
    wanted, group_of = _adam_groups(optimizer, params)
    grads = list(next_grads)
    if len(grads) != len(wanted):
        raise ValueError(
            f"next_grads has {len(grads)} tensors, expected {len(wanted)} (one per parameter)"
        )
    out = []
    for i, (p, g) in enumerate(zip(wanted, grads, strict=True)):
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(
                f"next_grads[{i}] has shape {tuple(g.shape)}, expected {tuple(p.shape)}"
            )
        group, state = group_of[p], optimizer.state.get(p, {})
        beta1, beta2 = group["betas"]
        g = g.detach()
        if group.get("maximize", False):
            g = -g
        decoupled = group.get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW))
        if group["weight_decay"] and not decoupled:
            g = g + group["weight_decay"] * p.detach()
        step = float(state["step"]) + 1.0 if "step" in state else 1.0
        v = state["exp_avg_sq"].detach() if "exp_avg_sq" in state else torch.zeros_like(g)
        v_next = beta2 * v + (1.0 - beta2) * g * g
        if group.get("amsgrad", False) and "max_exp_avg_sq" in state:
            v_next = torch.maximum(state["max_exp_avg_sq"].detach(), v_next)
        v_hat = v_next / (1.0 - beta2**step)
        out.append((1.0 - beta1**step) * (v_hat.sqrt() + group["eps"]))
    return out


def adam_preconditioner(
    optimizer: torch.optim.Optimizer, params: Iterable[Tensor] | None = None
) -> list[Tensor]:
    """Diagonal of ``P_t``, the preconditioner the *last* update applied (detached copies).

    The Edge-of-Stability stage compares sharpness with the next update's preconditioner,
    :func:`adam_next_preconditioner`; this one is kept for analyses of the step just taken.

    ``params`` fixes the order (pass ``model.parameters()`` to match :func:`sharpness`; entries
    with ``requires_grad=False`` are skipped); by default the optimizer's param-group order.
    Raises ``ValueError`` for a parameter the optimizer has not stepped yet.
    """
    wanted, group_of = _adam_groups(optimizer, params)
    out = []
    for i, p in enumerate(wanted):
        group, state = group_of[p], optimizer.state.get(p, {})
        if "exp_avg_sq" not in state:
            raise ValueError(
                f"parameter {i} has no Adam state (exp_avg_sq); step the optimizer first"
            )
        beta1, beta2 = group["betas"]
        step = float(state["step"])
        second = state["max_exp_avg_sq"] if group.get("amsgrad", False) else state["exp_avg_sq"]
        v_hat = second.detach() / (1.0 - beta2**step)
        out.append((1.0 - beta1**step) * (v_hat.sqrt() + group["eps"]))
    return out


def flatten_preconditioner(
    preconditioner: Tensor | Sequence[Tensor], params: Sequence[Tensor]
) -> Tensor:
    """Validate ``P``'s diagonal against ``params`` and return it as one flat vector."""
    n = sum(p.numel() for p in params)
    if isinstance(preconditioner, Tensor):
        if preconditioner.numel() != n:
            raise ValueError(
                f"preconditioner has {preconditioner.numel()} entries, expected {n} "
                "(one per trainable parameter entry)"
            )
        flat = preconditioner.reshape(-1)
    else:
        parts = list(preconditioner)
        if len(parts) != len(params):
            raise ValueError(
                f"preconditioner has {len(parts)} tensors, expected {len(params)} "
                "(one per trainable parameter)"
            )
        for i, (d, p) in enumerate(zip(parts, params, strict=True)):
            if tuple(d.shape) != tuple(p.shape):
                raise ValueError(
                    f"preconditioner tensor {i} has shape {tuple(d.shape)}, "
                    f"expected {tuple(p.shape)}"
                )
        flat = torch.cat([d.reshape(-1) for d in parts])
    flat = flat.detach().to(params[0].device, params[0].dtype)
    if not bool(torch.isfinite(flat).all()) or not bool((flat > 0).all()):
        raise ValueError("preconditioner entries must be finite and strictly positive")
    return flat


def preconditioned_matvec(matvec: MatVec, diag: Tensor) -> Callable[[Tensor], Tensor]:
    """``v -> P^{-1/2} H P^{-1/2} v`` for positive diagonal ``P`` (symmetric, unlike P^-1 H)."""
    scale = diag.rsqrt()
    return lambda v: scale * matvec(scale * v)


def gd_threshold(lr: float) -> float:
    """Gradient descent is stable on a quadratic while the sharpness is below ``2/lr``."""
    return 2.0 / lr


def momentum_threshold(lr: float, beta: float, nesterov: bool = False) -> float:
    """Heavy-ball ``(2+2b)/lr``; Nesterov ``(2+2b)/(lr (1+2b))``."""
    return (2.0 + 2.0 * beta) / (lr * (1.0 + 2.0 * beta) if nesterov else lr)


def adam_threshold(lr: float, beta1: float = 0.9) -> float:
    """Bound on the *preconditioned* sharpness: ``(2+2 beta1)/((1-beta1) lr)``."""
    return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)


def stability_threshold(
    optimizer: str | torch.optim.Optimizer, lr: float | None = None, **hyper: float
) -> float:
    """Stability threshold by optimizer name or from a ``torch.optim`` instance.

    Names: ``"gd"``/``"sgd"`` (``momentum=``, ``nesterov=``, ``dampening=`` optional),
    ``"momentum"``/``"heavy_ball"`` (``beta=`` or ``momentum=``), ``"nesterov"``,
    ``"adam"``/``"adamw"`` (``beta1=``, default 0.9). For an instance, ``lr`` and hyper-parameters
    default to those of its first param group.
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        group = optimizer.param_groups[0]
        lr = float(group["lr"]) if lr is None else lr
        if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
            return adam_threshold(lr, float(hyper.get("beta1", group["betas"][0])))
        if isinstance(optimizer, torch.optim.SGD):
            merged = {k: group[k] for k in ("momentum", "nesterov", "dampening")}
            merged.update(hyper)
            return stability_threshold("sgd", lr, **merged)
        raise ValueError(f"no stability threshold known for {type(optimizer).__name__}")
    if lr is None or lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    name = optimizer.lower()
    if name in ("gd", "sgd"):
        beta = float(hyper.get("momentum", 0.0))
        eff = lr * (1.0 - float(hyper.get("dampening", 0.0)))
        if beta == 0.0:
            return gd_threshold(eff)
        return momentum_threshold(eff, beta, nesterov=bool(hyper.get("nesterov", False)))
    if name in ("momentum", "heavy_ball", "nesterov"):
        if "beta" not in hyper and "momentum" not in hyper:
            raise ValueError(f"{name!r} needs the momentum coefficient (beta=...)")
        beta = float(hyper.get("beta", hyper.get("momentum", 0.0)))
        return momentum_threshold(lr, beta, nesterov=name == "nesterov")
    if name in ("adam", "adamw"):
        return adam_threshold(lr, float(hyper.get("beta1", 0.9)))
    raise ValueError(f"unknown optimizer name {optimizer!r}")
