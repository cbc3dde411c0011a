"""Stochastic trace estimators (Hutchinson, Hutch++) with a standard error.

Hutchinson: ``tr H = E[z^T H z]`` for Rademacher ``z``; with ``N`` probes the estimate is the
sample mean and its standard error is the sample standard deviation / sqrt(N) (an estimate of
the estimator's standard deviation; by the CLT the error is within 2 standard errors about 95%
of the time for moderate ``N``).

Hutch++ (Meyer, Musco, Musco, Woodruff 2021): a third of the budget sketches the dominant range
``Q = orth(H S)``, a third computes ``tr(Q^T H Q)`` exactly, the rest runs Hutchinson on the
deflated ``(I - QQ^T) H (I - QQ^T)``. Neural-network Hessians have a few outlier eigenvalues, so
deflating them cuts the variance. The reported standard error is that of the Hutchinson part,
conditional on the sketch ``Q`` (the exact part carries no sampling error given ``Q``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .lanczos import MatVec, _dot


@dataclass
class TraceEstimate:
    """A stochastic trace estimate: report ``mean +- stderr``."""

    mean: float
    stderr: float
    n_matvec: int
    samples: Tensor  #: per-probe quadratic forms of the stochastic part (float64)


def _rademacher(
    n: int, dtype: torch.dtype, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    bits = torch.randint(0, 2, (n,), generator=generator, device=device)
    return (2 * bits - 1).to(dtype)


def _summary(samples: Tensor) -> tuple[float, float]:
    mean = float(samples.mean())
    if samples.numel() < 2:
        return mean, float("inf")
    return mean, float(samples.std(unbiased=True) / samples.numel() ** 0.5)


def hutchinson(
    matvec: MatVec,
    n: int,
    *,
    num_samples: int = 100,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> TraceEstimate:
    """Hutchinson's estimator with ``num_samples`` Rademacher probes."""
    if num_samples < 2:
        raise ValueError("num_samples must be >= 2 to estimate a standard error")
    device = torch.device(device)
    vals = []
    for _ in range(num_samples):
        z = _rademacher(n, dtype, device, generator)
        vals.append(_dot(matvec(z), z))
    samples = torch.tensor(vals, dtype=torch.float64)
    mean, se = _summary(samples)
    return TraceEstimate(mean, se, num_samples, samples)


def hutchpp(
    matvec: MatVec,
    n: int,
    *,
    num_matvecs: int = 99,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> TraceEstimate:
    """Hutch++ with a budget of ``num_matvecs`` products (sketch size ``num_matvecs // 3``)."""
    s = min(num_matvecs // 3, n)
    g = num_matvecs - 2 * s
    if s < 1 or g < 2:
        raise ValueError("num_matvecs must be >= 5 for Hutch++")
    device = torch.device(device)
    Y = torch.stack([matvec(_rademacher(n, dtype, device, generator)) for _ in range(s)], dim=1)
    Q, _ = torch.linalg.qr(Y)
    exact = sum(_dot(matvec(Q[:, j].contiguous()), Q[:, j]) for j in range(s))
    vals = []
    for _ in range(g):
        z = _rademacher(n, dtype, device, generator)
        z = z - Q @ (Q.t() @ z)
        vals.append(_dot(matvec(z), z))
    samples = torch.tensor(vals, dtype=torch.float64)
    mean, se = _summary(samples)
    return TraceEstimate(exact + mean, se, 2 * s + g, samples)
