"""Stochastic Lanczos quadrature (SLQ) for the Hessian's spectral density.

The spectral measure ``phi(t) = (1/n) sum_i delta(t - lambda_i)`` satisfies
``int f dphi = (1/n) tr f(H) = E_v[v^T f(H) v]`` for unit probes ``v = z / sqrt(n)`` with Rademacher
``z``. For each probe, ``m`` Lanczos steps give ``T_m = S diag(theta) S^T`` and the Gauss
quadrature ``v^T f(H) v ~= sum_j S_{1j}^2 f(theta_j)``: nodes ``theta_j`` with weights
``S_{1j}^2`` summing to 1. Averaging over probes yields one set of nodes with weights summing to
exactly 1, returned as :class:`SpectralDensity`; it can be read as a histogram (mass per bin) or
smoothed with a normalised Gaussian kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .lanczos import MatVec, lanczos_iterate, ritz


@dataclass
class SpectralDensity:
    """Quadrature nodes and weights of the spectral measure (weights sum to 1)."""

    nodes: Tensor  #: (q,) float64
    weights: Tensor  #: (q,) float64, non-negative, sum 1
    n_matvec: int

    def histogram(self, edges: Tensor) -> Tensor:
        """Mass in each bin ``[edges[i], edges[i+1])`` (last bin closed)."""
        edges = torch.as_tensor(edges, dtype=torch.float64)
        idx = torch.bucketize(self.nodes, edges, right=True) - 1
        idx = torch.where(self.nodes == edges[-1], torch.full_like(idx, len(edges) - 2), idx)
        inside = (idx >= 0) & (idx < len(edges) - 1)
        out = torch.zeros(len(edges) - 1, dtype=torch.float64)
        return out.index_add_(0, idx[inside], self.weights[inside])

    def on_grid(self, grid: Tensor, sigma: float) -> Tensor:
        """Gaussian-broadened density at ``grid`` points; integrates to 1 over the real line."""
        grid = torch.as_tensor(grid, dtype=torch.float64)
        z = (grid[:, None] - self.nodes[None, :]) / sigma
        kernel = torch.exp(-0.5 * z**2) / (sigma * np.sqrt(2.0 * np.pi))
        return kernel @ self.weights


def slq(
    matvec: MatVec,
    n: int,
    *,
    num_probes: int = 4,
    num_steps: int = 80,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> SpectralDensity:
    """SLQ with Rademacher probes and fully reorthogonalised Lanczos (``num_steps`` each)."""
    if num_probes < 1 or num_steps < 1:
        raise ValueError("num_probes and num_steps must be >= 1")
    device = torch.device(device)
    nodes, weights, used = [], [], 0
    for _ in range(num_probes):
        bits = torch.randint(0, 2, (n,), generator=generator, device=device)
        z = (2 * bits - 1).to(dtype)
        run = lanczos_iterate(matvec, z, num_steps, restart_on_breakdown=False)
        used += run.n_matvec
        theta, S = ritz(run.alphas, run.betas)
        nodes.append(theta)
        weights.append(S[0, :] ** 2 / num_probes)
    w = np.concatenate(weights)
    return SpectralDensity(
        torch.from_numpy(np.concatenate(nodes)), torch.from_numpy(w / w.sum()), used
    )
