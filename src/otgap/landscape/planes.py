"""Two-dimensional planes through parameter space for drawing a loss landscape and a trajectory.

Two constructions, both from a trajectory of flattened parameter vectors (``snapshots``, shape
``(S, P)``, first row the initial weights, last row the final weights):

- ``paper_plane``: the construction of the paper's Appendix A.2 code. ``d1`` is the unit vector from
  the initial to the final weights; ``d2`` is the second principal component of the checkpoints,
  made orthogonal to ``d1`` (Gram-Schmidt) and normalised; the plane is centred at the initial
  weights, so the trajectory starts at (0, 0) and ends on the positive ``d1`` axis.
- ``pca_plane``: Li et al. (2018)'s trajectory plane: the top two principal components of
  ``theta_i - theta_final`` (centred over the checkpoints, as scikit-learn's PCA in their code),
  centred at the final weights, so the trajectory ends at (0, 0).

Principal components come from a thin SVD of the ``(S, P)`` matrix in float64, which is cheap
because there are few snapshots even when ``P`` is large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A direction whose Gram-Schmidt residual is shorter than this (relative) is treated as degenerate.
_DEGENERATE = 1e-8


@dataclass(frozen=True)
class Plane:
    """An affine plane ``origin + a * d1 + b * d2`` with orthonormal ``d1``, ``d2`` (float64)."""

    kind: str
    origin: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    # Fraction of the checkpoints' (mean-centred) variance along d1 and along d2.
    explained_variance: tuple[float, float]

    @property
    def directions(self) -> np.ndarray:
        """The two directions stacked as a ``(2, P)`` array."""
        return np.stack([self.d1, self.d2])

    def point(self, a: float, b: float) -> np.ndarray:
        return self.origin + a * self.d1 + b * self.d2


def _as_snapshots(snapshots: np.ndarray) -> np.ndarray:
    x = np.asarray(snapshots, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"snapshots must have shape (S, P) with S >= 2 (initial and final weights); "
            f"got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("snapshots hold non-finite values; drop the diverged rows before use")
    return x


def principal_components(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal directions (rows, unit norm) and variance ratios of the rows of ``x`` (centred).

    The sign of each direction is fixed (largest-magnitude entry positive) so results do not depend
    on the SVD routine's sign choice.
    """
    xc = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    idx = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    return vt * signs[:, None], ratio


def variance_along(x: np.ndarray, direction: np.ndarray) -> float:
    """Fraction of the mean-centred variance of the rows of ``x`` along a unit ``direction``."""
    xc = x - x.mean(axis=0, keepdims=True)
    total = float(np.sum(xc**2))
    if total == 0.0:
        return 0.0
    return float(np.sum((xc @ direction) ** 2) / total)


def paper_plane(snapshots: np.ndarray) -> Plane:
    """The paper's plane: d1 along final - initial, d2 = PC2 orthogonalised; origin = initial."""
    x = _as_snapshots(snapshots)
    init, final = x[0], x[-1]
    delta = final - init
    norm = np.linalg.norm(delta)
    if norm == 0.0:
        raise ValueError("initial and final weights are identical; the paper's plane is undefined")
    d1 = delta / norm
    comps, _ = principal_components(x)
    # The paper's choice is PC2; if it is (numerically) parallel to d1, or there are too few
    # snapshots for a second component, fall back to the other components in order.
    order = [1, 0, *range(2, comps.shape[0])] if comps.shape[0] > 1 else [0]
    d2 = None
    for k in order:
        v = comps[k] - (comps[k] @ d1) * d1
        n = np.linalg.norm(v)
        if n > _DEGENERATE:
            d2 = v / n
            break
    if d2 is None:
        d2 = _any_orthogonal(d1)
    ev = (variance_along(x, d1), variance_along(x, d2))
    return Plane("paper", init.copy(), d1, d2, ev)


def pca_plane(snapshots: np.ndarray) -> Plane:
    """Li et al.'s plane: top-2 PCs of theta_i - theta_final; origin = final weights."""
    x = _as_snapshots(snapshots)
    final = x[-1]
    comps, ratio = principal_components(x - final)
    d1 = comps[0]
    if comps.shape[0] > 1 and ratio[1] > 0:
        d2 = comps[1]
        ev = (float(ratio[0]), float(ratio[1]))
    else:  # a straight-line trajectory has one component; any orthogonal d2 will do
        d2 = _any_orthogonal(d1)
        ev = (float(ratio[0]), 0.0)
    return Plane("pca", final.copy(), d1, d2, ev)


def _any_orthogonal(d1: np.ndarray) -> np.ndarray:
    e = np.zeros_like(d1)
    e[np.argmin(np.abs(d1))] = 1.0
    v = e - (e @ d1) * d1
    return v / np.linalg.norm(v)


PLANES = {"paper": paper_plane, "pca": pca_plane}


def project(plane: Plane, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane coordinates of ``points`` (``(S, P)``) and each point's distance to it.

    Solves ``min_c || origin + c @ [d1; d2] - theta ||`` per point through the 2x2 normal
    equations, so it stays correct if the directions are not exactly orthonormal.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    d = plane.directions
    rel = x - plane.origin
    coords = np.linalg.solve(d @ d.T, d @ rel.T).T
    residual = np.linalg.norm(rel - coords @ d, axis=1)
    return coords, residual


def grid_axes(coords: np.ndarray, n: int, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid axes (``alphas``, ``betas``) spanning the coordinates' bounds padded by ``padding``.

    ``padding`` is a fraction of each axis's extent (the paper pads by 40%). An axis with zero
    extent (a trajectory that never leaves a line) gets the other axis's extent, or 1.
    """
    if n < 2:
        raise ValueError(f"grid size must be >= 2, got {n}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    c = np.asarray(coords, dtype=np.float64)
    lo, hi = c.min(axis=0), c.max(axis=0)
    span = hi - lo
    fallback = span.max() if span.max() > 0 else 1.0
    span = np.where(span > 0, span, fallback)
    mid = 0.5 * (lo + hi)
    lo = np.minimum(lo, mid - 0.5 * span) - padding * span
    hi = np.maximum(hi, mid + 0.5 * span) + padding * span
    return np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
