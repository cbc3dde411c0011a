"""BiostatisV6 (docs/sources.md#biostatisv6), the update as its authors coded it, vectorised with torch's foreach ops.

The authors' repository (Hindolch/V6-optimizer) holds two classes named ``BiostatisV6``:

- :class:`BiostatisV6` -- the hierarchical one of ``optimizers/biostatis.py``, which the authors' README
  text describes: per parameter group a weak *global* homeostasis (from all gradients of the
  group) blended 30/70 with a *local* one (from each parameter tensor's gradient);
- :class:`BiostatisV6Dynamo` -- the global-only one of ``optimizers/dynamo.py`` (commit 0561329,
  the class ``experiments/resnet18_compare.py`` imported until the hierarchical one replaced it
  on 4 Nov 2025): the group's statistics at full strength, no local terms, no blend.

One step, per parameter group (``N`` entries in all) and per parameter tensor ``i`` (``n_i``
entries, its own step count ``t``), with ``rho`` = homeo_rate, ``c*`` = coherence_target,
``E*`` = energy_target, ``lambda`` = lambda_energy::

    E_g = sum(g^2) / N          C_g = sum|tanh g| / N                    (whole group)
    m <- b1 m + (1-b1) g        v <- b2 v + (1-b2) g^2                   (Adam moments)
    M_k <- d_k M_k + (1-d_k) g  F = sum_k w_k M_k                        (memory_decays d_k, weights w_k)
    cos = <m, g> / (max(|m|, 1e-8) max(|g|, 1e-8))                       (torch.cosine_similarity)
    g~ = g (1 + 0.5 sign(g) tanh(cos)) [+ a (1 - exp(-0.02 t)) g  if  mean|m| / (mean sqrt(v) + 1e-12) < f]
    hierarchical: h = 0.3 (1 - 0.5 rho tanh(C_g - c*)) + 0.7 (1 - rho tanh(C_i - c*))
                  e = 0.3 clip(0.9 (1 + 0.5 lambda (E* - E_g)) + 0.1, 0.925, 1.075)
                    + 0.7 clip(0.8 (1 + lambda (E* - E_i)) + 0.2, 0.85, 1.15)
                  with E_i = mean(g_i^2), C_i = mean|tanh g_i| of the tensor alone
    dynamo:       h = 1 - rho tanh(C_g - c*),  e = clip(0.8 (1 + lambda (E* - E_g)) + 0.2, 0.85, 1.15)
    p <- p (1 - lr wd) - (lr / bc1) h e (m / (sqrt(v) / sqrt(bc2) + eps) + 0.05 F + 0.01 g~)

with ``bc1 = 1 - b1^t``, ``bc2 = 1 - b2^t``, ``a`` = ascent_strength, ``f`` = flip_threshold.

Where the README's prose or pseudocode differs from the code (the code is implemented):

- The final update in the README's equation omits bias correction; the code divides ``m`` by
  ``sqrt(v / bc2) + eps`` and scales *all three* terms (the memory ``F`` and ``g~`` included) by
  ``lr / bc1``, so the first steps move ``F`` and ``g~`` up to 10x more than the equation says.
- The pseudocode adds ``ascent_strength * g`` on a low importance; the code ramps it in with
  ``1 - exp(-0.02 t)``, so it is ~0 in the first steps. "Importance" is never defined in the
  seed: in the code it is ``mean|m| / (mean sqrt(v) + 1e-12)`` per tensor, un-bias-corrected, and
  the branch is taken per parameter *tensor*, not per entry. It *adds* a multiple of the gradient
  (a larger descent step): nothing in the code ascends.
- "Signal-to-noise ratio", "energy" and "coherence" are per tensor (``mean(g^2)``,
  ``mean|tanh g|``), not per parameter entry; "per-parameter" in the README means per tensor.
- The README calls ``E_t = mean(g^2)`` the "average gradient magnitude" and ``F`` a "fractional
  gradient trace"; ``F`` is a fixed 0.6/0.4 blend of two EMAs of ``g`` (decays 0.9 and 0.99).
- "Directional coherence" uses the cosine between the *updated* momentum (which already
  contains ``g``) and ``g``; the polarity term ``0.5 sign(g) tanh(cos)`` times ``g`` is
  ``0.5 tanh(cos) |g|``, a shift of every entry by the same sign, not an alignment.
- Decoupled weight decay multiplies by ``1 - lr wd`` with the *un*-corrected ``lr`` (as AdamW).
- The global statistics and the blend are computed per parameter *group*, not over the model.
- The authors pass ``coherence_error`` through a float32 ``torch.tensor`` before ``tanh``; here
  all statistics stay in float64 (a difference below float32's rounding).

Cost: the authors' loop calls ``.item()`` four times per tensor per step (a device sync each);
here every reduction is a tensor and every elementwise pass is a ``torch._foreach_*`` call over
the group; the only Python loop over tensors builds per-tensor dot products (no sync). State per
parameter: ``exp_avg``, ``exp_avg_sq``, two memories (4 copies of the parameter, AdamW keeps 2),
the step count and the last gain ``h e`` (a 0-d tensor, for :func:`biostatis_preconditioner`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from otgap.optim.base import OptimizerSpec

#: the constants of the authors' code that are not hyperparameters
ALPHA_GLOBAL = 0.3  # weight of the global homeostasis in the hierarchical blend
MEMORY_COEF = 0.05  # weight of the multi-scale memory F in the update
GRAD_COEF = 0.01  # weight of the modulated gradient g~ in the update
ASCENT_RAMP = 0.02  # ascent ramp 1 - exp(-ASCENT_RAMP t)
IMPORTANCE_EPS = 1e-12
COSINE_EPS = 1e-8  # torch.cosine_similarity's default eps


def _check_unit_interval(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
        raise ValueError(f"BiostatisV6: {name} must be in [0, 1), got {value!r}")


def _check_hyper(
    lr: float,
    betas: Sequence[float],
    eps: float,
    weight_decay: float,
    memory_decays: Sequence[float],
    memory_weights: Sequence[float],
    homeo_rate: float,
    lambda_energy: float,
    ascent_strength: float,
) -> None:
    """ValueError naming the first invalid hyperparameter (memory weights need not sum to 1)."""
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"BiostatisV6: lr must be positive and finite, got {lr!r}")
    if len(betas) != 2:
        raise ValueError(f"BiostatisV6: betas must be a pair (beta1, beta2), got {betas!r}")
    _check_unit_interval("betas[0] (beta1)", betas[0])
    _check_unit_interval("betas[1] (beta2)", betas[1])
    if not (isinstance(eps, int | float) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"BiostatisV6: eps must be >= 0 and finite, got {eps!r}")
    if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
        raise ValueError(f"BiostatisV6: weight_decay must be >= 0, got {weight_decay!r}")
    if len(memory_decays) == 0 or len(memory_decays) != len(memory_weights):
        raise ValueError(
            "BiostatisV6: memory_decays and memory_weights must be non-empty and of equal "
            f"length, got {memory_decays!r} and {memory_weights!r}"
        )
    for k, d in enumerate(memory_decays):
        _check_unit_interval(f"memory_decays[{k}]", d)
    for k, w in enumerate(memory_weights):
        if not (isinstance(w, int | float) and math.isfinite(w)):
            raise ValueError(f"BiostatisV6: memory_weights[{k}] must be finite, got {w!r}")
    for name, value in (
        ("homeo_rate", homeo_rate),
        ("lambda_energy", lambda_energy),
        ("ascent_strength", ascent_strength),
    ):
        if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
            raise ValueError(f"BiostatisV6: {name} must be >= 0 and finite, got {value!r}")


def homeostatic_gain(
    group: Mapping[str, Any], g_sq_sum: Tensor, tanh_sum: Tensor, numel: Tensor, hierarchical: bool
) -> Tensor:
    """``h e`` per tensor of one group from its per-tensor ``sum(g^2)``, ``sum|tanh g|`` and sizes."""
    rho, c_star = group["homeo_rate"], group["coherence_target"]
    e_star, lam = group["energy_target"], group["lambda_energy"]
    total = numel.sum()
    energy_g = g_sq_sum.sum() / total
    coherence_g = tanh_sum.sum() / total
    if hierarchical:
        h_g = 1.0 - 0.5 * rho * torch.tanh(coherence_g - c_star)
        e_g = (0.9 * (1.0 + 0.5 * lam * (e_star - energy_g)) + 0.1).clamp(0.925, 1.075)
        h_l = 1.0 - rho * torch.tanh(tanh_sum / numel - c_star)
        e_l = (0.8 * (1.0 + lam * (e_star - g_sq_sum / numel)) + 0.2).clamp(0.85, 1.15)
        h = ALPHA_GLOBAL * h_g + (1.0 - ALPHA_GLOBAL) * h_l
        e = ALPHA_GLOBAL * e_g + (1.0 - ALPHA_GLOBAL) * e_l
    else:
        h = 1.0 - rho * torch.tanh(coherence_g - c_star)
        e = (0.8 * (1.0 + lam * (e_star - energy_g)) + 0.2).clamp(0.85, 1.15)
    return (h * e).expand(len(numel))


class BiostatisV6(torch.optim.Optimizer):
    """The hierarchical BiostatisV6 (``optimizers/biostatis.py``); see the module docstring."""

    #: False for the global-only class of ``optimizers/dynamo.py``
    hierarchical: bool = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        homeo_rate: float = 0.03,
        coherence_target: float = 0.8,
        energy_target: float = 1e-3,
        lambda_energy: float = 0.1,
        memory_decays: tuple[float, ...] = (0.9, 0.99),
        memory_weights: tuple[float, ...] = (0.6, 0.4),
        flip_threshold: float = 0.2,
        ascent_strength: float = 0.05,
    ) -> None:
        _check_hyper(
            lr,
            betas,
            eps,
            weight_decay,
            memory_decays,
            memory_weights,
            homeo_rate,
            lambda_energy,
            ascent_strength,
        )
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "homeo_rate": homeo_rate,
            "coherence_target": coherence_target,
            "energy_target": energy_target,
            "lambda_energy": lambda_energy,
            "memory_decays": tuple(memory_decays),
            "memory_weights": tuple(memory_weights),
            "flip_threshold": flip_threshold,
            "ascent_strength": ascent_strength,
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        _check_hyper(
            g["lr"],
            g["betas"],
            g["eps"],
            g["weight_decay"],
            g["memory_decays"],
            g["memory_weights"],
            g["homeo_rate"],
            g["lambda_energy"],
            g["ascent_strength"],
        )

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)
        return loss

    def _state(self, p: Tensor, n_memories: int) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["memory_emas"] = [
                torch.zeros_like(p, memory_format=torch.preserve_format) for _ in range(n_memories)
            ]
        return state

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        decays, weights = group["memory_decays"], group["memory_weights"]

        grads = []
        for i, p in enumerate(params):
            if p.grad.is_sparse:
                raise RuntimeError(
                    f"BiostatisV6: parameter {i} of its group has a sparse gradient; "
                    "sparse gradients are not supported"
                )
            grads.append(p.grad)
        states = [self._state(p, len(decays)) for p in params]
        devices = {p.device for p in params}
        if len(devices) > 1:
            raise ValueError(
                f"BiostatisV6: a parameter group spans devices {sorted(map(str, devices))}; "
                "its global statistics need one device: put each device's parameters in "
                "their own group"
            )
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        memories = [[s["memory_emas"][k] for s in states] for k in range(len(decays))]
        for s in states:
            s["step"] += 1
        steps = [s["step"] for s in states]

        # moments and memories: one foreach pass each
        torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
        for mem, decay in zip(memories, decays, strict=True):
            torch._foreach_lerp_(mem, grads, 1.0 - decay)

        # per-tensor reductions, stacked into one float64 (6, n) array: no host sync
        n, device = len(grads), grads[0].device
        tanh_g = torch._foreach_tanh(grads)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        sums = torch.stack(
            [
                *torch._foreach_norm(grads, 2),
                *torch._foreach_norm(tanh_g, 1),  # sum |tanh g|
                *torch._foreach_norm(exp_avgs, 2),
                *torch._foreach_norm(exp_avgs, 1),  # sum |m|
                *torch._foreach_norm(denom, 1),  # sum sqrt(v)
                *(
                    torch.dot(m.reshape(-1), g.reshape(-1))
                    for m, g in zip(exp_avgs, grads, strict=True)
                ),
            ]
        ).to(torch.float64)
        g_norm, tanh_sum, m_norm, m_abs_sum, sqrt_v_sum, dots = sums.view(6, n).unbind(0)
        # what depends on the step counts and sizes only, in one host-to-device copy (from pinned
        # memory on a GPU: a copy from pageable memory would wait for the stream)
        host = torch.tensor(
            [
                [float(g.numel()) for g in grads],
                [1.0 - math.exp(-ASCENT_RAMP * t) for t in steps],
                [1.0 - beta1**t for t in steps],
            ],
            dtype=torch.float64,
        )
        if device.type == "cuda":
            host = host.pin_memory()
        numel, ramp, bc1 = host.to(device, non_blocking=True)

        gain = homeostatic_gain(group, g_norm.square(), tanh_sum, numel, self.hierarchical)

        cos = dots / (m_norm.clamp_min(COSINE_EPS) * g_norm.clamp_min(COSINE_EPS))
        importance = (m_abs_sum / numel) / (sqrt_v_sum / numel + IMPORTANCE_EPS)
        ascent = torch.where(
            importance < group["flip_threshold"], group["ascent_strength"] * ramp, 0.0
        )
        scale = -lr * gain / bc1  # -(lr / bc1) h e
        # g~ = (1 + ascent) g + 0.5 tanh(cos) |g|; all three terms scaled by `scale`
        coefs = torch.stack(
            [scale, scale * GRAD_COEF * (1.0 + ascent), scale * (GRAD_COEF * 0.5) * torch.tanh(cos)]
        ).unbind(0)
        coef_step, coef_g, coef_abs_g = (c.unbind(0) for c in coefs)

        # denominator sqrt(v / bc2) + eps, in place in the sqrt(v) buffers
        torch._foreach_div_(denom, [math.sqrt(1.0 - beta2**t) for t in steps])
        torch._foreach_add_(denom, eps)
        update = torch._foreach_div(exp_avgs, denom)
        for mem, w in zip(memories, weights, strict=True):
            torch._foreach_add_(update, mem, alpha=MEMORY_COEF * w)
        torch._foreach_mul_(update, coef_step)
        torch._foreach_addcmul_(update, grads, coef_g)
        abs_g = torch._foreach_abs(grads)
        torch._foreach_addcmul_(update, abs_g, coef_abs_g)

        if wd != 0:
            torch._foreach_mul_(params, 1.0 - lr * wd)
        torch._foreach_add_(params, update)
        for s, value in zip(states, gain.clone().unbind(0), strict=True):
            s["gain"] = value


class BiostatisV6Dynamo(BiostatisV6):
    """The global-only BiostatisV6 of ``optimizers/dynamo.py``; see the module docstring."""

    hierarchical = False


def biostatis_preconditioner(
    optimizer: BiostatisV6,
    params: Sequence[Tensor] | None = None,
    next_grads: Sequence[Tensor] | None = None,
) -> list[Tensor] | None:
    """Diagonal ``P`` by which the momentum term of an update divides, one tensor per parameter.

    An update moves ``p`` by ``-lr P^-1 m - (lr h e / bc1) (0.05 F + 0.01 g~)`` (and the decay)
    with ``P = bc1 (sqrt(v_hat) + eps) / (h e)``: Adam's ``P_t`` over the tensor's gain ``h e``
    (at most (1 + rho) 1.075 * 1.15 hierarchical, (1 + rho) 1.15 dynamo). Without ``next_grads``:
    the ``P`` of the last update (None before the first step). With ``next_grads`` (one tensor
    per entry of ``params``, the gradients the next update will see): the ``P`` of that next
    update, with ``v`` and the gains as it will compute them; the optimizer is not changed. All
    of a group's parameters must be in ``params`` then, since the gain uses the whole group.
    """
    if next_grads is None:
        if not optimizer.state:
            return None
        wanted = (
            [p for g in optimizer.param_groups for p in g["params"]]
            if params is None
            else [p for p in params if p.requires_grad]
        )
        group_of = {p: g for g in optimizer.param_groups for p in g["params"]}
        out = []
        for i, p in enumerate(wanted):
            state = optimizer.state.get(p, {})
            if "gain" not in state:
                raise ValueError(
                    f"parameter {i} (shape {tuple(p.shape)}) has no BiostatisV6 state; "
                    "step the optimizer first"
                )
            beta1, beta2 = group_of[p]["betas"]
            t = float(state["step"])
            v_hat = state["exp_avg_sq"].detach() / (1.0 - beta2**t)
            gain = state["gain"].to(v_hat.dtype)
            out.append((1.0 - beta1**t) * (v_hat.sqrt() + group_of[p]["eps"]) / gain)
        return out

    if params is None:
        raise ValueError("next_grads needs params: the parameters the gradients belong to")
    wanted = [p for p in params if p.requires_grad]
    grads = list(next_grads)
    if len(grads) != len(wanted):
        raise ValueError(
            f"next_grads has {len(grads)} tensors, expected {len(wanted)} (one per parameter)"
        )
    grad_of = {}
    for i, (p, g) in enumerate(zip(wanted, grads, strict=True)):
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(
                f"next_grads[{i}] has shape {tuple(g.shape)}, expected {tuple(p.shape)}"
            )
        grad_of[p] = g.detach()
    result: dict[Tensor, Tensor] = {}
    for group in optimizer.param_groups:
        members = [p for p in group["params"] if p in grad_of]
        if not members:
            continue
        if len(members) != len(group["params"]):
            raise ValueError(
                "next_grads must cover every parameter of a group: the gain uses the whole group"
            )
        gs = [grad_of[p] for p in members]
        numel = torch.tensor([float(g.numel()) for g in gs], dtype=torch.float64)
        g_sq = torch.stack([g.double().square().sum().cpu() for g in gs])
        tanh_sum = torch.stack([g.double().tanh().abs().sum().cpu() for g in gs])
        gains = homeostatic_gain(group, g_sq, tanh_sum, numel, optimizer.hierarchical)
        beta1, beta2 = group["betas"]
        for p, g, gain in zip(members, gs, gains, strict=True):
            state = optimizer.state.get(p, {})
            t = float(state.get("step", 0)) + 1.0
            v = state["exp_avg_sq"].detach() if "exp_avg_sq" in state else torch.zeros_like(g)
            v_hat = (beta2 * v + (1.0 - beta2) * g * g) / (1.0 - beta2**t)
            gain_t = gain.to(device=v_hat.device, dtype=v_hat.dtype)
            result[p] = (1.0 - beta1**t) * (v_hat.sqrt() + group["eps"]) / gain_t
    return [result[p] for p in wanted]


class Biostatis(OptimizerSpec):
    """BiostatisV6 (hierarchical) in the EoS grid, compared with Adam's threshold under its P.

    What the comparison means: with ``h e``, ``bc1`` and ``v`` frozen, and the memory and
    gradient terms left out, the update is Adam's heavy-ball form on ``P^-1 H`` with
    ``P = bc1 (sqrt(v_hat) + eps) / (h e)`` (:func:`biostatis_preconditioner`), stable while
    ``lambda_1(P^-1 H) < (2 + 2 beta1) / ((1 - beta1) lr)``. What it does not mean: the extra
    terms ``(lr h e / bc1)(0.05 F + 0.01 g~)`` are un-preconditioned gradient steps (``F`` a
    momentum of its own, ``g~`` modulated per tensor), so the true quadratic threshold is lower
    than this one by an amount that depends on ``sqrt(v_hat)``; the threshold is Adam's bound for
    the dominant term, not BiostatisV6's.
    """

    full_batch = False
    preconditioned = True
    defaults = {
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 1e-2,
        "homeo_rate": 0.03,
        "coherence_target": 0.8,
        "energy_target": 1e-3,
        "lambda_energy": 0.1,
        "memory_decays": (0.9, 0.99),
        "memory_weights": (0.6, 0.4),
        "flip_threshold": 0.2,
        "ascent_strength": 0.05,
    }
    _torch_class: type[BiostatisV6] = BiostatisV6

    @classmethod
    def _make(cls, params: list, lr: float, **hyper: Any) -> torch.optim.Optimizer:
        beta1, beta2 = hyper.pop("beta1"), hyper.pop("beta2")
        hyper["memory_decays"] = tuple(hyper["memory_decays"])
        hyper["memory_weights"] = tuple(hyper["memory_weights"])
        return cls._torch_class(params, lr=lr, betas=(beta1, beta2), **hyper)

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
        params: list[Tensor] | None = None,
        next_grads: list[Tensor] | None = None,
    ) -> list[Tensor] | None:
        """P of the last update; of the next one when given its gradients (both call forms of
        ``OptimizerSpec.preconditioner``: ``(optimizer)`` and ``(optimizer, params, next_grads)``)."""
        return biostatis_preconditioner(optimizer, params, next_grads)  # type: ignore[arg-type]


class BiostatisDynamo(Biostatis):
    """The global-only BiostatisV6 of ``optimizers/dynamo.py``; threshold and P as for ``biostatis``."""

    _torch_class = BiostatisV6Dynamo


# ---- what the update is made of: the effective gain and each term's size ----------------------
@torch.no_grad()
def update_terms(optimizer: BiostatisV6) -> list[dict[str, Tensor]]:
    """The three terms of each tensor's last update, rebuilt from the state and ``p.grad``.

    Valid right after :meth:`BiostatisV6.step` while ``p.grad`` still holds the gradient that
    step used. Per parameter (in group order): ``adam = m / (sqrt(v / bc2) + eps)``,
    ``memory = 0.05 sum_k w_k M_k``, ``grad = 0.01 g~`` and the scalar ``gain`` (``h e``); the
    step was ``p <- p (1 - lr wd) - (lr / bc1) gain (adam + memory + grad)``.
    """
    out = []
    for group in optimizer.param_groups:
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "gain" not in state or p.grad is None:
                continue
            t = state["step"]
            g = p.grad
            m, v = state["exp_avg"], state["exp_avg_sq"]
            adam = m / (v.sqrt() / math.sqrt(1.0 - beta2**t) + group["eps"])
            memory = sum(
                w * mem
                for w, mem in zip(group["memory_weights"], state["memory_emas"], strict=True)
            )
            cos = torch.dot(m.reshape(-1).double(), g.reshape(-1).double()) / (
                m.double().norm().clamp_min(COSINE_EPS) * g.double().norm().clamp_min(COSINE_EPS)
            )
            importance = m.double().abs().mean() / (v.double().sqrt().mean() + IMPORTANCE_EPS)
            ascent = (
                group["ascent_strength"] * (1.0 - math.exp(-ASCENT_RAMP * t))
                if float(importance) < group["flip_threshold"]
                else 0.0
            )
            g_tilde = g * (1.0 + ascent) + 0.5 * torch.tanh(cos).to(g.dtype) * g.abs()
            out.append(
                {
                    "adam": adam,
                    "memory": MEMORY_COEF * memory,
                    "grad": GRAD_COEF * g_tilde,
                    "gain": state["gain"].detach(),
                    "scale": torch.as_tensor(group["lr"] / (1.0 - beta1**t)),
                }
            )
    return out


def update_diagnostics(optimizer: torch.optim.Optimizer) -> dict[str, float] | None:
    """The last step's effective gain ``h e`` over tensors (mean, min, max; and the mean over
    parameter entries, i.e. weighted by tensor size) and the sizes of the memory and
    modulated-gradient terms relative to the Adam term (norms over all tensors). None for an
    optimizer that is not BiostatisV6 or before its first step."""
    if not isinstance(optimizer, BiostatisV6):
        return None
    terms = update_terms(optimizer)
    if not terms:
        return None
    gains = torch.stack([t["gain"].double().cpu() for t in terms])
    sizes = torch.tensor([float(t["adam"].numel()) for t in terms], dtype=torch.float64)

    def norm(key: str) -> float:
        return math.sqrt(sum(float(t[key].double().square().sum()) for t in terms))

    adam = norm("adam")
    return {
        "gain_mean": float(gains.mean()),
        "gain_min": float(gains.min()),
        "gain_max": float(gains.max()),
        "gain_entry_mean": float((gains * sizes).sum() / sizes.sum()),
        "memory_over_adam": norm("memory") / adam if adam > 0 else math.nan,
        "grad_over_adam": norm("grad") / adam if adam > 0 else math.nan,
    }


def summarise_trace(trace: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Run-level effective step multiplier from per-evaluation :func:`update_diagnostics` rows:
    mean of the entry-weighted gain over evaluations (the multiplier an lr-matched AdamW arm
    uses), the tensor-mean gain's mean, the smallest and largest tensor gain seen, and the largest
    relative memory and gradient terms."""
    if not trace:
        raise ValueError("no BiostatisV6 diagnostics recorded (no evaluation after a step)")
    col = {k: np.asarray([float(r[k]) for r in trace]) for k in trace[0] if k != "step"}
    return {
        "effective_gain": float(col["gain_entry_mean"].mean()),
        "gain_mean": float(col["gain_mean"].mean()),
        "gain_min": float(col["gain_min"].min()),
        "gain_max": float(col["gain_max"].max()),
        "memory_over_adam_max": float(col["memory_over_adam"].max()),
        "grad_over_adam_max": float(col["grad_over_adam"].max()),
        "n_evaluations": len(trace),
    }
