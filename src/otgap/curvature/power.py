"""Power iteration with deflation, kept as a comparison baseline for Lanczos.

Follows the scheme popularised by PyHessian: for each of the top-k eigenpairs start from a random
unit vector, orthogonalise the iterate against the eigenvectors already found (deflation by
projection), stop when the Rayleigh quotient changes by less than ``tol`` relative to itself, or
after ``max_iter`` products. Plain power iteration converges to the eigenvalue of largest
*magnitude*; with ``algebraic=True`` a stage whose result is negative is repeated on the shifted
operator ``H - mu I`` (``mu`` the negative value found), whose dominant eigenvalue is
``lambda_max - mu``, so the top *algebraic* eigenvalue is returned.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .lanczos import EigResult, MatVec, _dot, _norm, random_unit


def _orthonormalise(v: Tensor, found: list[Tensor]) -> Tensor:
    for u in found:
        v = v - _dot(v, u) * u
    return v / max(_norm(v), 1e-300)


def _power_stage(
    matvec: MatVec,
    v: Tensor,
    found: list[Tensor],
    tol: float,
    max_iter: int,
    shift: float,
) -> tuple[float, Tensor, int]:
    """One deflated power iteration on ``H - shift I``; returns (eigenvalue of H, vector, HVPs)."""
    value: float | None = None
    used = 0
    for _ in range(max_iter):
        v = _orthonormalise(v, found)
        hv = matvec(v)
        used += 1
        if shift != 0.0:
            hv = hv - shift * v
        estimate = _dot(hv, v)
        v = hv / max(_norm(hv), 1e-300)
        if value is not None and abs(value - estimate) / (abs(value) + 1e-6) < tol:
            value = estimate
            break
        value = estimate
    assert value is not None
    return value + shift, _orthonormalise(v, found), used


def power_iteration(
    matvec: MatVec,
    n: int,
    k: int = 1,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    v0: Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    algebraic: bool = False,
    compute_residuals: bool = True,
) -> EigResult:
    """Top-k eigenpairs by deflated power iteration (``max_iter`` products per eigenpair).

    ``converged`` reports whether every stage met ``tol``; ``residuals`` are true residual norms
    ``||H x - theta x||`` (one extra product each, not counted in ``n_matvec``; NaN when
    ``compute_residuals`` is False).
    """
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the operator dimension n={n}")
    device = torch.device(device)
    found: list[Tensor] = []
    values: list[float] = []
    used = 0
    converged = True
    for stage in range(k):
        start = v0.to(device, dtype) if (v0 is not None and stage == 0) else None
        if start is None:
            start = random_unit(n, dtype, device, generator)
        value, vec, m = _power_stage(matvec, start, found, tol, max_iter, 0.0)
        used += m
        converged &= m < max_iter
        if algebraic and value < 0.0:
            fresh = random_unit(n, dtype, device, generator)
            value, vec, m = _power_stage(matvec, fresh, found, tol, max_iter, value)
            used += m
            converged &= m < max_iter
        found.append(vec)
        values.append(value)
    order = sorted(range(k), key=lambda i: -values[i])
    vectors = torch.stack([found[i] for i in order])
    vals = torch.tensor([values[i] for i in order], dtype=torch.float64)
    res = torch.full((k,), float("nan"), dtype=torch.float64)
    if compute_residuals:
        for i in range(k):
            res[i] = _norm(matvec(vectors[i]) - vals[i].item() * vectors[i])
    return EigResult(
        values=vals, vectors=vectors, residuals=res, n_matvec=used, converged=converged
    )
