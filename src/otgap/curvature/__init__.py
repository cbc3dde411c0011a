"""Hessian curvature of a training loss for the Edge-of-Stability experiments.

Public API (all functions leave the model's parameters, ``.grad``, buffers and train/eval flags
exactly as found; products run in eval mode, i.e. BatchNorm running statistics, dropout off):

``sharpness(model, loss_fn, inputs, targets, *, k=1, tol=1e-4, max_iter=100,
preconditioner=None, chunk_size=None, v0=None, return_vectors=False)``
    The k largest algebraic eigenvalues of the Hessian (float64 CPU tensor, descending), or of
    ``P^-1/2 H P^-1/2`` when ``preconditioner`` (diagonal of ``P``) is given; with
    ``return_vectors`` also a ``(k, n)`` tensor of unit eigenvectors (rows, flat over the
    trainable parameters in ``model.parameters()`` order; for a preconditioned call they are
    eigenvectors of the preconditioned matrix). ``v0`` warm-starts from e.g. the previous call's
    top vector (blended with a random direction and run for at least 12 products, so that an
    overtaking eigenvalue is not missed; see :mod:`otgap.curvature.lanczos`). Lanczos with full
    reorthogonalisation; stops when every reported value has Ritz residual
    ``<= tol * |lambda_1|`` (a bound on its distance to an eigenvalue).
    Without a preconditioner, when the first ``nn.Linear`` acts on the flattened inputs and the
    batch has fewer samples than input features (the paper's MLP on 256 samples), the products
    run on an exactly reduced input layer (:mod:`otgap.curvature.reduce`: same values, vectors
    mapped back; ~3x cheaper products there).
    Invalid input (empty batch, no trainable parameters, k > n, a preconditioner of the wrong
    shape or with non-positive entries, a bad ``v0``, a non-finite loss) raises ``ValueError``
    before anything is computed; hitting ``max_iter`` warns (:class:`CurvatureConvergenceWarning`).
``hessian_eigenpairs(...same..., method="auto", eval_mode=True, seed=0, return_vectors=True,
reduce=True)``
    -> :class:`EigResult`: the same computation with diagnostics (``n_matvec``, ``residuals``,
    ``converged``, ``reduced``), a choice of HVP method, ``reduce=False`` to switch the
    input-layer reduction off and, with ``eval_mode=False``, batch statistics.
``hessian_trace(model, loss_fn, inputs, targets, *, num_matvecs=99, estimator="hutch++",
chunk_size=None, method="auto", seed=0, reduce=True)`` -> :class:`TraceEstimate` (``mean``,
``stderr``).
``spectral_density(model, loss_fn, inputs, targets, *, num_probes=4, num_steps=80,
chunk_size=None, method="auto", seed=0, reduce=True)`` -> :class:`SpectralDensity` (nodes,
weights summing to 1; ``.histogram(edges)``, ``.on_grid(grid, sigma)``). Both use the exact
input-layer reduction where it applies (``reduce=False`` switches it off).
``adam_next_preconditioner(optimizer, params, next_grads)`` -> list of diagonal tensors
``P_{t+1}``, the preconditioner of the next update (what the EoS stage compares with 38/lr);
``adam_preconditioner(optimizer, params=None)`` -> ``P_t`` of the last update.
``stability_threshold(optimizer_or_name, lr=None, **hyper)``: 2/lr, (2+2b)/lr, 38/lr, ...
``batch_sharpness(model, loss_fn, batches)`` -> float: mean over mini-batches of
``g_B^T H_B g_B / g_B^T g_B`` (one HVP per batch; :mod:`otgap.curvature.batch`);
``batch_sharpness_stats`` also returns its standard error over batches.

Building blocks: :class:`HessianOperator` (``hvp``; ``reduce=True`` for the input-layer
reduction), :func:`lanczos_topk`, :func:`power_iteration`,
:func:`slq`, :func:`hutchinson`, :func:`hutchpp`, :func:`preconditioned_matvec`.

``loss_fn(outputs, targets)`` must return a scalar. ``chunk_size`` splits the batch for bounded
memory and is exact only for losses that are means over samples (see ``hvp``). Randomness comes
from a private generator seeded with ``seed`` (0), so results are reproducible and the global RNG
is not advanced.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .batch import BatchSharpness, batch_rayleigh_quotients, batch_sharpness, batch_sharpness_stats
from .hvp import DEFAULT_CHUNKED_METHOD, DEFAULT_METHOD, HessianOperator, HVPMethod, LossFn
from .lanczos import EigResult, flush_tiny_, lanczos_topk
from .power import power_iteration
from .precond import (
    adam_next_preconditioner,
    adam_preconditioner,
    adam_threshold,
    flatten_preconditioner,
    gd_threshold,
    momentum_threshold,
    preconditioned_matvec,
    stability_threshold,
)
from .reduce import InputLayerReduction
from .slq import SpectralDensity, slq
from .trace import TraceEstimate, hutchinson, hutchpp

__all__ = [
    "BatchSharpness",
    "DEFAULT_CHUNKED_METHOD",
    "DEFAULT_METHOD",
    "CurvatureConvergenceWarning",
    "EigResult",
    "HessianOperator",
    "SpectralDensity",
    "TraceEstimate",
    "adam_next_preconditioner",
    "adam_preconditioner",
    "adam_threshold",
    "batch_rayleigh_quotients",
    "batch_sharpness",
    "batch_sharpness_stats",
    "gd_threshold",
    "hessian_eigenpairs",
    "hessian_trace",
    "hutchinson",
    "hutchpp",
    "lanczos_topk",
    "momentum_threshold",
    "power_iteration",
    "preconditioned_matvec",
    "sharpness",
    "slq",
    "spectral_density",
    "stability_threshold",
]


class CurvatureConvergenceWarning(RuntimeWarning):
    """Lanczos hit ``max_iter`` before meeting ``tol``; the values returned are the best so far."""


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _check_start(v0: Tensor | None, op: HessianOperator) -> Tensor | None:
    if v0 is None:
        return None
    if not isinstance(v0, Tensor) or v0.numel() != op.n_params:
        size = v0.numel() if isinstance(v0, Tensor) else type(v0).__name__
        raise ValueError(
            f"v0 has {size} entries, expected {op.n_params} (flat trainable parameters)"
        )
    v = v0.detach().reshape(-1).to(op.device, op.dtype)
    norm = float(v.norm())  # NaN/inf entries make the norm non-finite
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("v0 must be finite and non-zero")
    return v


def _expand(
    res: EigResult, red: InputLayerReduction, k: int, generator: torch.Generator
) -> EigResult:
    """Map a result on the reduced space back to the model's (module docstring of ``reduce``).

    The model's spectrum is the reduced one plus ``n_full - n_reduced`` zeros: where zero
    outranks some of the reduced top-k values, exact null eigenpairs (residual 0) take their place.
    """
    values = res.values.tolist()
    n_zero = min(k, red.n_full - red.n_reduced)
    ranked = sorted(
        [(v, 0, i) for i, v in enumerate(values)] + [(0.0, 1, j) for j in range(n_zero)],
        key=lambda t: (-t[0], t[1]),
    )[:k]
    vectors = None
    if res.vectors is not None:
        mapped = red.to_full(res.vectors)
        for u in mapped:
            flush_tiny_(u)
        used = sum(1 for _, src, _ in ranked if src == 1)
        null = red.null_vectors(used, generator).to(mapped.dtype) if used else None
        vectors = torch.stack([mapped[i] if src == 0 else null[i] for _, src, i in ranked])
    residuals = torch.tensor(
        [float(res.residuals[i]) if src == 0 else 0.0 for _, src, i in ranked],
        dtype=torch.float64,
    )
    return EigResult(
        values=torch.tensor([v for v, _, _ in ranked], dtype=torch.float64),
        vectors=vectors,
        residuals=residuals,
        n_matvec=res.n_matvec,
        converged=res.converged,
        reduced=True,
    )


def hessian_eigenpairs(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    *,
    k: int = 1,
    tol: float = 1e-4,
    max_iter: int = 100,
    preconditioner: Tensor | Sequence[Tensor] | None = None,
    chunk_size: int | None = None,
    v0: Tensor | None = None,
    method: HVPMethod = "auto",
    eval_mode: bool = True,
    seed: int = 0,
    return_vectors: bool = True,
    reduce: bool = True,
    solver: str = "lanczos",
) -> EigResult:
    """Top-k algebraic eigenpairs with diagnostics; see :func:`sharpness` for the arguments.

    ``solver="power"`` runs deflated power iteration instead of Lanczos (the original code's
    method: ``max_iter`` products per eigenpair at most, stopping when the Rayleigh quotient
    changes by less than ``tol`` relative; ``v0`` starts it, unblended), with the top *algebraic*
    eigenvalue (a negative dominant one is shifted away). Lanczos is the default: to the same
    error it needs far fewer products (``benchmarks/curvature.py``).

    ``reduce`` allows the exact input-layer reduction (:mod:`otgap.curvature.reduce`; used
    without a preconditioner, for graph-reuse products on an unchunked batch, when the batch has
    fewer samples than input features); ``EigResult.reduced`` says whether it was used. Values,
    vectors and residuals are those of the model's Hessian either way.
    Everything is validated (``ValueError``) before the model is touched.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    if not isinstance(max_iter, int) or max_iter < k:
        raise ValueError(f"max_iter={max_iter!r} must be an int >= k={k}")
    if solver not in ("lanczos", "power"):
        raise ValueError(f"solver must be 'lanczos' or 'power', got {solver!r}")
    op = HessianOperator(
        model,
        loss_fn,
        inputs,
        targets,
        method=method,
        chunk_size=chunk_size,
        eval_mode=eval_mode,
        reduce=reduce and preconditioner is None,
    )
    if k > op.n_params:
        raise ValueError(f"k={k} exceeds the number of trainable parameters n={op.n_params}")
    if op.reduction is not None and k > op.reduction.n_reduced:
        op.reduction = None
    diag = None if preconditioner is None else flatten_preconditioner(preconditioner, op.params)
    start = _check_start(v0, op)
    generator = _generator(op.device, seed)
    with op:
        red = op.reduction
        if red is not None and start is not None:
            start = red.to_reduced(start)
            if not float(start.norm()) > 0.0:  # v0 lies in the null space of the reduction
                start = None
        matvec = op.matvec if diag is None else preconditioned_matvec(op.matvec, diag)
        if solver == "power":
            result = power_iteration(
                matvec,
                op.n,
                k,
                tol=tol,
                max_iter=max_iter,
                v0=start,
                dtype=op.dtype,
                device=op.device,
                generator=generator,
                algebraic=True,
            )
            if not return_vectors:
                result = EigResult(
                    values=result.values,
                    vectors=None,
                    residuals=result.residuals,
                    n_matvec=result.n_matvec,
                    converged=result.converged,
                )
        else:
            result = lanczos_topk(
                matvec,
                op.n,
                k,
                tol=tol,
                max_iter=max_iter,
                v0=start,
                dtype=op.dtype,
                device=op.device,
                generator=generator,
                return_vectors=return_vectors,
            )
    if red is not None:
        result = _expand(result, red, k, generator)
    if not result.converged:
        warnings.warn(
            f"{solver} did not reach tol={tol:g} in {result.n_matvec} iterations "
            f"(residual bounds {result.residuals.tolist()})",
            CurvatureConvergenceWarning,
            stacklevel=2,
        )
    return result


def sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    *,
    k: int = 1,
    tol: float = 1e-4,
    max_iter: int = 100,
    preconditioner: Tensor | Sequence[Tensor] | None = None,
    chunk_size: int | None = None,
    v0: Tensor | None = None,
    return_vectors: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The k largest algebraic Hessian eigenvalues (descending, float64), optionally vectors.

    ``tol`` bounds each value's error relative to ``|lambda_1|`` (Ritz residual test);
    ``max_iter`` bounds the Hessian-vector products (a warning is issued if it is hit);
    ``preconditioner`` is ``diag(P)`` flat or per parameter (e.g. :func:`adam_preconditioner`);
    ``chunk_size`` bounds memory for mean-over-samples losses; ``v0`` is a flat warm start.
    With ``return_vectors`` returns ``(values, vectors)``, vectors of shape ``(k, n)``.

    Warm starts: the residual test only bounds the distance to *some* eigenvalue, so from ``v0``
    alone an eigenvector almost orthogonal to it (a new eigenvalue overtaking the tracked one,
    frequent at the edge of stability) was missed: the test accepted the tracked branch after
    1-2 products. Guard: ``v0`` is blended with a seeded random direction,
    ``v0/|v0| + 0.3 r/|r|`` (``lanczos.WARM_START_BLEND``), and the test is not consulted before
    ``min(12, max_iter, n)`` products (``lanczos.MIN_KRYLOV_DIM``). Cost: a warm-started call
    uses at least 12 HVPs, which on the curvature benchmark's tracking run is more than a cold
    start needs (596 vs 370 HVPs over 50 checkpoints; 269 unguarded). The guard is
    probabilistic: an overtaker very close to the tracked eigenvalue, relative to the spread of
    the rest, can still be missed (measurements in :mod:`otgap.curvature.lanczos`); track with
    ``k >= 2`` or cold-start where crossings matter. Cold starts (``v0=None``) are unchanged.
    """
    res = hessian_eigenpairs(
        model,
        loss_fn,
        inputs,
        targets,
        k=k,
        tol=tol,
        max_iter=max_iter,
        preconditioner=preconditioner,
        chunk_size=chunk_size,
        v0=v0,
        return_vectors=return_vectors,
    )
    return (res.values, res.vectors) if return_vectors else res.values


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    *,
    num_matvecs: int = 99,
    estimator: str = "hutch++",
    chunk_size: int | None = None,
    method: HVPMethod = "auto",
    seed: int = 0,
    reduce: bool = True,
) -> TraceEstimate:
    """Stochastic Hessian trace (``"hutch++"`` or ``"hutchinson"``) with its standard error.

    With the input-layer reduction (``reduce``, where it applies) the estimator runs on the
    reduced Hessian, whose trace is exactly the model's (the removed directions are null).
    """
    if estimator not in ("hutch++", "hutchinson"):
        raise ValueError(f"estimator must be 'hutch++' or 'hutchinson', got {estimator!r}")
    op = HessianOperator(
        model, loss_fn, inputs, targets, method=method, chunk_size=chunk_size, reduce=reduce
    )
    with op:
        kw = dict(dtype=op.dtype, device=op.device, generator=_generator(op.device, seed))
        if estimator == "hutchinson":
            return hutchinson(op.matvec, op.n, num_samples=num_matvecs, **kw)
        return hutchpp(op.matvec, op.n, num_matvecs=num_matvecs, **kw)


def spectral_density(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    *,
    num_probes: int = 4,
    num_steps: int = 80,
    chunk_size: int | None = None,
    method: HVPMethod = "auto",
    seed: int = 0,
    reduce: bool = True,
) -> SpectralDensity:
    """SLQ estimate of the Hessian eigenvalue density (nodes and weights summing to 1).

    With the input-layer reduction (``reduce``, where it applies) SLQ runs on the reduced
    Hessian and the model's measure is rebuilt exactly: the reduced density weighted by
    ``n_reduced / n`` plus an atom of mass ``1 - n_reduced / n`` at 0 (the last node).
    """
    op = HessianOperator(
        model, loss_fn, inputs, targets, method=method, chunk_size=chunk_size, reduce=reduce
    )
    with op:
        dens = slq(
            op.matvec,
            op.n,
            num_probes=num_probes,
            num_steps=num_steps,
            dtype=op.dtype,
            device=op.device,
            generator=_generator(op.device, seed),
        )
    red = op.reduction
    if red is None:
        return dens
    share = red.n_reduced / red.n_full
    zero = torch.zeros(1, dtype=torch.float64)
    return SpectralDensity(
        torch.cat([dens.nodes, zero]),
        torch.cat([dens.weights * share, zero + (1.0 - share)]),
        dens.n_matvec,
    )
