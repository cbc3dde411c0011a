"""Lanczos with full reorthogonalisation for the top-k algebraic eigenpairs of a symmetric operator.

Only ``matvec`` is needed. The Krylov basis is stored (in the operator's dtype) and every new
vector, after the three-term recurrence, is orthogonalised against all previous ones (classical
Gram-Schmidt, a second pass when the first cancelled), so no spurious copies ("ghosts") of
converged eigenvalues appear; memory is ``m * n`` numbers for ``m``
iterations. The tridiagonal matrix ``T_m`` and its eigen-decomposition (Ritz values) are kept in
float64.

Convergence criterion. After ``m`` steps ``H V_m = V_m T_m + beta_m q_{m+1} e_m^T``. For a Ritz
pair ``(theta_i, V_m s_i)`` the residual norm is exactly ``|beta_m * s_{m,i}|`` (last component of
the i-th eigenvector of ``T_m``), and for symmetric ``H`` some eigenvalue lies within that distance
of ``theta_i``. We stop when the k largest Ritz values all satisfy
``|beta_m * s_{m,i}| <= tol * |theta_1|`` (``theta_1`` the largest Ritz value, our estimate of
``lambda_1``). The true error is usually far smaller (it is at most ``residual^2 / gap``).
Caveats shared by every single-vector Krylov method: an eigenvalue whose eigenvector is (nearly)
orthogonal to the start vector is found late or not at all, and a repeated eigenvalue is found
once; a random start makes the first a probability-zero event.

Warm starts. The residual test only bounds the distance to *some* eigenvalue. Started at (or
near) an eigenvector that is no longer the top one -- an eigenvalue overtaking the tracked one, the
typical event at the edge of stability -- plain Lanczos met the test after 1-2 products and
returned the tracked, now non-top, eigenvalue as converged (H with eigenvalues 10, 9, 8..-1,
n = 2000, started at the eigenvector of 9: 9.0 after one product). Two guards, for warm starts
only (``v0`` given):

* the start is ``v0/|v0| + WARM_START_BLEND * r/|r|`` (normalised), ``r`` a standard-normal
  vector from the solver's seeded generator, so every eigenvector has an overlap of order
  ``WARM_START_BLEND / sqrt(n)`` with it (a cold start has ``1 / sqrt(n)``);
* the stopping test is not consulted before the Krylov dimension reaches ``MIN_KRYLOV_DIM``
  (or ``min(max_iter, n)`` if smaller), giving Lanczos room to amplify that overlap.

The blend is what protects tight tolerances (its random part must be resolved to ``tol``
anyway), the minimum dimension what protects loose ones. Measured over 30 generator seeds,
started at the eigenvector of the 2nd eigenvalue (half of them plus 1e-5 noise), "failure" =
the 2nd eigenvalue returned:

* the example above (10, 9, 8..-1, n = 2000): 0 failures at tol 1e-4 for any blend >= 0.1; at
  tol 1e-3 / 1e-2, 50-100% with a minimum of 6, 3-7% with 10, 0 with 12;
* the same with n = 2e5: at tol 1e-4, 7% with blend 0.1 and 0 with 0.3 (minimum 10-12); at tol
  1e-3 / 1e-2, 50-83% with a minimum of 10, 13-20% with 12, 0 with 14;
* a Hessian-like spectrum (outliers 10, 9, 5, 3, ..., bulk ~0.05, n = 2e5) and the benchmark
  MLP's Hessian (started at its 2nd or 3rd eigenvector): 0 failures from a minimum of 6-8;
* a close overtaker (10 vs 9.7 over a bulk on [-1, 6], n = 2e4): 10-30% with a minimum of 12,
  3% with 14.

Cold starts failed in none of these cases, so they are left unguarded. Hence blend 0.3 (0.5
changed little, 0.1 failed more at tight tol) and minimum 12 (no failure
on the reviewer's example at any tol). Cost: a warm-started call uses at least
``MIN_KRYLOV_DIM`` products; on the benchmark's tracking run (50 checkpoints, target error
1e-4) 596 HVPs instead of 269 unguarded -- more than cold starts at every checkpoint (370):
where eigenvalues may cross, a guarded warm start buys safety, not speed. The guard is
probabilistic, not a proof (see the close-overtaker case); track with ``k >= 2`` or cold-start
where crossings matter. No cheaper guard was found: a "separation" test (stop only when every
other Ritz value plus its residual lies below the top one, no minimum, blend 0.3) missed the
overtaker in every run at tol 1e-2 on each spectrum above, in 7-100% at 1e-3 and, on the
Hessian-like and close-overtaker spectra, in 57-60% at 1e-4 (blend 1: 17-20%), because a random component's Ritz pairs settle on the bulk with small residuals long before an
outlier's 1/sqrt(n) share of it has been amplified; detecting an overtaker costs about what a
cold start costs, so a warm start can only save the *convergence* part of the work.

Breakdown (``beta`` ~ 0, an invariant subspace was found): for top-k the iteration continues from
a fresh random vector orthogonal to the basis (``T`` becomes block diagonal); for quadrature (SLQ)
it stops, the quadrature being exact at that point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]


@dataclass
class EigResult:
    """Eigenvalue estimates with their diagnostics."""

    values: Tensor  #: (k,) float64, descending
    vectors: Tensor | None  #: (k, n) unit vectors, operator dtype, or None
    residuals: Tensor  #: (k,) float64 residual bounds ||H x - theta x||
    n_matvec: int  #: operator applications used
    converged: bool  #: whether the stopping criterion was met before max_iter
    reduced: bool = False  #: computed on the exactly reduced input layer (curvature.reduce)


class KrylovBasis:
    """Row store of orthonormal vectors in fixed-size blocks (no copying when it grows).

    Blocks are kept at or below ~16 MiB where possible: on CPU, glibc serves such sizes from its
    heap after the first call, so later calls reuse warm pages instead of faulting in a fresh
    mapping for every stored vector (measured at ~3 ms per 2.5 MB vector on the benchmark box).
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, max_rows: int):
        row_bytes = n * torch.tensor([], dtype=dtype).element_size()
        self.block_rows = int(min(max(1, (16 << 20) // row_bytes), 64, max(1, max_rows)))
        self.n, self.dtype, self.device = n, dtype, device
        self.blocks: list[Tensor] = []
        self.size = 0

    def push_scaled(self, w: Tensor, scale: float) -> Tensor:
        """Store ``scale * w`` as the next vector (written in place) and return its row view."""
        if self.size == len(self.blocks) * self.block_rows:
            self.blocks.append(
                torch.empty(self.block_rows, self.n, dtype=self.dtype, device=self.device)
            )
        row = self.blocks[-1][self.size % self.block_rows]
        torch.mul(w, scale, out=row)
        self.size += 1
        return row

    def subtract_last_two(self, w: Tensor, beta: float, alpha: float) -> None:
        """``w -= beta q_{j-1} + alpha q_j`` in one pass when both rows share a block."""
        j = self.size - 1
        block, r = divmod(j - 1, self.block_rows)
        if r + 1 < self.block_rows:
            pair = self.blocks[block][r : r + 2]
            coef = torch.tensor([beta, alpha], dtype=w.dtype, device=w.device)
            w.addmv_(pair.t(), coef, alpha=-1.0)
        else:
            w.add_(self.row(j - 1), alpha=-beta).add_(self.row(j), alpha=-alpha)

    def _filled(self) -> list[Tensor]:
        full, rest = divmod(self.size, self.block_rows)
        return self.blocks[:full] + ([self.blocks[full][:rest]] if rest else [])

    def row(self, i: int) -> Tensor:
        return self.blocks[i // self.block_rows][i % self.block_rows]

    def combine(self, coeffs: Tensor) -> Tensor:
        """``coeffs @ V`` for a (k, size) coefficient matrix: k vectors in the span."""
        out, start = None, 0
        for block in self._filled():
            part = coeffs[:, start : start + block.shape[0]] @ block
            out = part if out is None else out.add_(part)
            start += block.shape[0]
        return out

    def _project_once(self, w: Tensor) -> Tensor:
        coeffs = []
        for block in self._filled():
            c = block @ w
            w.addmv_(block.t(), c, alpha=-1.0)
            coeffs.append(c)
        return torch.cat(coeffs)

    def project_out(self, w: Tensor) -> tuple[Tensor, float]:
        """Remove the basis' span from ``w`` in place by classical Gram-Schmidt.

        One pass, repeated once when it cancelled most of ``w`` (``||c|| > ||w_after||``, the
        Daniel-Gragg-Kaufman-Stewart test with eta = 1/sqrt 2), where rounding could leave
        components along the basis. Returns the float64 coefficients ``V w`` removed and
        ``||w||`` after projection.
        """
        c = self._project_once(w)
        total, norm = c.to(torch.float64), _norm(w)
        if float(c.norm()) > norm:
            total = total + self._project_once(w).to(torch.float64)
            norm = _norm(w)
        return total, norm


def _dot(a: Tensor, b: Tensor) -> float:
    return float(torch.dot(a, b))


def _norm(a: Tensor) -> float:
    return float(torch.linalg.vector_norm(a))


def ritz(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the tridiagonal ``T`` (float64).

    Uses torch's dense ``eigh`` on purpose: SciPy's LAPACK runs on its own BLAS thread pool, whose
    spinning threads were measured to slow the following torch kernels ~10x on 2 cores.
    """
    m = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    theta, S = torch.linalg.eigh(T)
    return theta.numpy(), S.numpy()


def flush_tiny_(u: Tensor) -> Tensor:
    """Zero, in place, entries of the unit vector ``u`` below ``eps^2`` in magnitude.

    They are numerically irrelevant, but carried from call to call by warm starts they decay
    into subnormal floats, which made CPU products ~30x slower (measured on the tracking
    benchmark). Applied to returned eigenvectors.
    """
    eps = torch.finfo(u.dtype).eps
    return u.masked_fill_(u.abs() < eps * eps, 0.0)


def random_unit(
    n: int, dtype: torch.dtype, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """A standard-normal direction (drawn from ``generator``; global RNG untouched if given)."""
    v = torch.randn(n, dtype=dtype, device=device, generator=generator)
    return v / v.norm()


@dataclass
class LanczosRun:
    """Raw output of :func:`lanczos_iterate`."""

    alphas: list[float]
    betas: list[float]  #: betas[j] couples q_j and q_{j+1}; len == len(alphas)
    basis: KrylovBasis
    n_matvec: int
    stopped: bool  #: stop() returned True


def lanczos_iterate(
    matvec: MatVec,
    q0: Tensor,
    max_steps: int,
    *,
    stop: Callable[[list[float], list[float]], bool] | None = None,
    restart_on_breakdown: bool = True,
    generator: torch.Generator | None = None,
) -> LanczosRun:
    """Run up to ``max_steps`` Lanczos steps from ``q0`` with full reorthogonalisation.

    ``stop(alphas, betas)`` is asked after every step (``betas[-1]`` being the newest residual
    coupling) and ends the run when it returns True.
    """
    n = q0.numel()
    max_steps = min(max_steps, n)
    basis = KrylovBasis(n, q0.dtype, q0.device, max_rows=max_steps)
    q = basis.push_scaled(q0, 1.0 / _norm(q0))
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    breakdown = 100.0 * torch.finfo(q0.dtype).eps
    for j in range(max_steps):
        w = matvec(q)
        if w.data_ptr() == q.data_ptr():  # never modify the basis through an aliasing matvec
            w = w.clone()
        # three-term recurrence, then full reorthogonalisation against every stored vector;
        # the reorthogonalisation coefficient along q_j corrects alpha_j's rounding error.
        alpha = _dot(w, q)
        if j == 0:
            w.add_(q, alpha=-alpha)
        else:
            basis.subtract_last_two(w, betas[-1], alpha)
        coeffs, beta = basis.project_out(w)
        alpha += float(coeffs[j])
        alphas.append(alpha)
        betas.append(beta)
        scale = max(scale, abs(alpha), beta)
        if stop is not None and stop(alphas, betas):
            return LanczosRun(alphas, betas, basis, j + 1, True)
        if j + 1 == max_steps:
            break
        if beta <= breakdown * scale:
            betas[-1] = 0.0
            if not restart_on_breakdown:
                break
            w = torch.randn(n, dtype=q0.dtype, device=q0.device, generator=generator)
            _, beta = basis.project_out(w)
        q = basis.push_scaled(w, 1.0 / beta)
    return LanczosRun(alphas, betas, basis, len(alphas), False)


#: weight of the random direction blended into a warm start (see the module docstring)
WARM_START_BLEND = 0.3
#: Krylov dimension before the stopping test may end a warm-started run (module docstring)
MIN_KRYLOV_DIM = 12


def lanczos_topk(
    matvec: MatVec,
    n: int,
    k: int = 1,
    *,
    tol: float = 1e-4,
    max_iter: int = 100,
    v0: Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    return_vectors: bool = True,
    warm_blend: float = WARM_START_BLEND,
    min_iter: int = MIN_KRYLOV_DIM,
) -> EigResult:
    """Top-k algebraic eigenpairs of the symmetric operator ``matvec`` (see module docstring).

    ``v0`` warm-starts the Krylov space (e.g. the previous top eigenvector); otherwise a random
    normal vector from ``generator`` is used. At most ``min(max_iter, n)`` products are used.
    A warm start is blended with a random direction (weight ``warm_blend``) and runs at least
    ``min(min_iter, max_iter, n)`` steps, so that an eigenvalue overtaking the one ``v0`` belongs
    to is not missed (module docstring); ``warm_blend=0, min_iter=1`` is the unguarded solver.
    """
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the operator dimension n={n}")
    device = torch.device(device)
    q0 = random_unit(n, dtype, device, generator)
    min_steps = k
    if v0 is not None:  # q0 <- v0/|v0| + warm_blend * r/|r| (normalised by lanczos_iterate)
        v = v0.to(device, dtype)
        q0 = torch.add(v / _norm(v), q0, alpha=warm_blend)
        min_steps = max(k, min(min_iter, max_iter, n))

    def converged(alphas: list[float], betas: list[float]) -> bool:
        if len(alphas) < min_steps:
            return False
        theta, S = ritz(alphas, betas)
        res = np.abs(betas[-1] * S[-1, -k:])
        return bool(np.all(res <= tol * abs(theta[-1])))

    run = lanczos_iterate(matvec, q0, max_iter, stop=converged, generator=generator)
    theta, S = ritz(run.alphas, run.betas)
    order = np.argsort(theta)[::-1][:k]
    values = torch.from_numpy(theta[order].copy())
    residuals = torch.from_numpy(np.abs(run.betas[-1] * S[-1, order]))
    vectors = None
    if return_vectors:
        Y = torch.from_numpy(S[:, order].copy()).to(device, dtype)
        vectors = run.basis.combine(Y.t().contiguous())
        for u in vectors:
            flush_tiny_(u.div_(u.norm()))
    return EigResult(
        values=values,
        vectors=vectors,
        residuals=residuals,
        n_matvec=run.n_matvec,
        converged=run.stopped,
    )
