"""Checks of otgap.curvature against dense float64 Hessians and hand computations."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from otgap.curvature import (
    CurvatureConvergenceWarning,
    HessianOperator,
    adam_preconditioner,
    hessian_eigenpairs,
    hessian_trace,
    power_iteration,
    sharpness,
    spectral_density,
    stability_threshold,
)
from otgap.curvature.lanczos import MIN_KRYLOV_DIM, lanczos_topk

# torch.func's forward-mode AD registers decompositions with the deprecated torch.jit.script
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
N_SAMPLES, D_IN, D_OUT = 20, 4, 3


# -- fixtures / references --------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _float64_single_thread():
    """Dense references are float64; one thread because these networks are tiny (OpenMP
    barriers dominate and stall badly on a loaded 2-core machine). Globals are restored."""
    old_dtype, old_threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(old_dtype)
    torch.set_num_threads(old_threads)


def make_net(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "tanh":
        net = nn.Sequential(nn.Linear(D_IN, 6), nn.Tanh(), nn.Linear(6, D_OUT))
    elif kind == "relu":
        net = nn.Sequential(nn.Linear(D_IN, 7), nn.ReLU(), nn.Linear(7, D_OUT))
    elif kind == "bn":
        net = nn.Sequential(nn.Linear(D_IN, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, D_OUT))
        with torch.no_grad():  # non-trivial running statistics
            for _ in range(3):
                net(2.0 * torch.randn(16, D_IN) + 1.0)
    else:
        raise KeyError(kind)
    return net.train()


def make_batch(loss: str, seed: int = 1, n: int = N_SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D_IN, generator=g)
    if loss == "mse":
        return x, torch.randn(n, D_OUT, generator=g)
    return x, torch.randint(0, D_OUT, (n,), generator=g)


LOSSES = {"mse": F.mse_loss, "ce": F.cross_entropy}


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def dense_hessian(model, loss_fn, x, y) -> torch.Tensor:
    """Dense Hessian over the flat trainable parameters, in eval mode (as the library does)."""
    named = trainable(model)
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])
    training = [(m, m.training) for m in model.modules()]
    model.eval()

    def f(theta):
        params, offset = {}, 0
        for name, p in named:
            params[name] = theta[offset : offset + p.numel()].view(p.shape)
            offset += p.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    try:
        return torch.autograd.functional.hessian(f, flat)
    finally:
        for m, t in training:
            m.training = t


def top_eigs(H: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    vals, vecs = torch.linalg.eigh(H)
    return vals.flip(0)[:k], vecs.flip(1)[:, :k].t()


def snapshot(model: nn.Module) -> dict:
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "grads": [None if p.grad is None else (p.grad, p.grad.clone()) for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "modes": [m.training for m in model.modules()],
    }


def assert_same_state(model: nn.Module, before: dict) -> None:
    for p, q in zip(model.parameters(), before["params"], strict=True):
        assert torch.equal(p.detach(), q)
    for p, g in zip(model.parameters(), before["grads"], strict=True):
        if g is None:
            assert p.grad is None
        else:
            assert p.grad is g[0] and torch.equal(p.grad, g[1])
    for b, c in zip(model.buffers(), before["buffers"], strict=True):
        assert torch.equal(b, c)
    assert [m.training for m in model.modules()] == before["modes"]


# -- eigenvalues vs dense -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tanh", "relu", "bn"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_topk_matches_dense(kind: str, loss: str) -> None:
    model, (x, y) = make_net(kind), make_batch(loss)
    H = dense_hessian(model, LOSSES[loss], x, y)
    ref_vals, ref_vecs = top_eigs(H, 3)
    n = H.shape[0]
    vals, vecs = sharpness(
        model, LOSSES[loss], x, y, k=3, tol=1e-10, max_iter=n, return_vectors=True
    )
    assert vals.dtype == torch.float64 and vals.shape == (3,)
    assert torch.all(vals[:-1] >= vals[1:])
    assert ((vals - ref_vals).abs() / ref_vals.abs()).max() <= 1e-6
    assert vecs.shape == (3, n)
    for lam, u in zip(vals, vecs, strict=True):  # true eigenvectors of the dense matrix
        assert (H @ u - lam * u).norm() <= 1e-6 * abs(ref_vals[0])
    assert abs(float(vecs[0] @ ref_vecs[0])) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("method", ["reuse", "double", "fwd"])
@pytest.mark.parametrize("kind", ["tanh", "relu", "bn"])
def test_hvp_methods_match_dense(method: str, kind: str) -> None:
    model, (x, y) = make_net(kind), make_batch("ce")
    H = dense_hessian(model, F.cross_entropy, x, y)
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(3))
    with HessianOperator(model, F.cross_entropy, x, y, method=method) as op:
        hv = op.matvec(v)
        hv2 = op.matvec(2.0 * v)  # reused graph must stay valid
    assert torch.allclose(hv, H @ v, rtol=0, atol=1e-12 * (H @ v).norm())
    assert torch.allclose(hv2, 2.0 * (H @ v), rtol=0, atol=1e-12 * (H @ v).norm())


@pytest.mark.parametrize("method", ["reuse", "double", "fwd"])
def test_chunked_hvp_equals_whole_batch(method: str) -> None:
    model, (x, y) = make_net("bn"), make_batch("mse")
    v = torch.randn(sum(p.numel() for p in model.parameters()))
    with HessianOperator(model, F.mse_loss, x, y, method=method) as whole:
        ref = whole.matvec(v)
    with HessianOperator(model, F.mse_loss, x, y, method=method, chunk_size=7) as chunked:
        assert len(chunked.chunks) == 3  # 7 + 7 + 6 samples, unequal weights
        out = chunked.matvec(v)
    assert torch.allclose(out, ref, rtol=0, atol=1e-12 * ref.norm())
    H = dense_hessian(model, F.mse_loss, x, y)
    assert torch.allclose(out, H @ v, rtol=0, atol=1e-12 * ref.norm())
    vals = sharpness(model, F.mse_loss, x, y, k=2, tol=1e-10, max_iter=200, chunk_size=7)
    assert torch.allclose(vals, top_eigs(H, 2)[0], rtol=1e-8)


def test_unused_and_linear_parameters() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(D_IN, D_OUT)
            self.unused = nn.Linear(2, 2)
            self.shift = nn.Parameter(torch.randn(1))  # the loss is linear in it

        def forward(self, x):
            extra = self.shift.expand(x.shape[0], 1)
            return torch.cat([torch.tanh(self.body(x)), extra], dim=1)

    def loss_fn(out, y):
        return F.mse_loss(out[:, :D_OUT], y) + out[:, D_OUT].mean()

    torch.manual_seed(0)
    model, (x, y) = Net(), make_batch("mse")
    H = dense_hessian(model, loss_fn, x, y)
    v = torch.randn(H.shape[0])
    for method in ("reuse", "double", "fwd"):
        with HessianOperator(model, loss_fn, x, y, method=method) as op:
            assert torch.allclose(op.matvec(v), H @ v, rtol=0, atol=1e-12)
    vals = sharpness(model, loss_fn, x, y, k=2, tol=1e-10, max_iter=H.shape[0])
    assert torch.allclose(vals, top_eigs(H, 2)[0], rtol=1e-8)


def test_negative_curvature_returns_top_algebraic() -> None:
    n = 12
    g = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g))
    spectrum = torch.tensor([-10.0, 3.0, 1.5] + [0.5 - 0.1 * i for i in range(n - 3)])
    A = Q @ torch.diag(spectrum) @ Q.t()

    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(n, generator=g))
            self.register_buffer("A", A)

        def forward(self, x):  # per-sample loss 0.5 x_i w^T A w, mean over the batch
            return 0.5 * x * (self.w @ self.A @ self.w)

    model, x = Quadratic(), torch.ones(4)
    vals = sharpness(model, lambda out, _: out.mean(), x, x, k=2, tol=1e-10, max_iter=n)
    assert torch.allclose(vals, torch.tensor([3.0, 1.5]), rtol=1e-9)
    with HessianOperator(model, lambda out, _: out.mean(), x, x) as op:
        plain = power_iteration(op.matvec, n, tol=1e-12, max_iter=2000, dtype=torch.float64)
        algebraic = power_iteration(
            op.matvec, n, tol=1e-12, max_iter=2000, dtype=torch.float64, algebraic=True
        )
    assert plain.values[0] == pytest.approx(-10.0, rel=1e-6)  # dominant in magnitude
    assert algebraic.values[0] == pytest.approx(3.0, rel=1e-6)


def test_power_iteration_topk_matches_dense() -> None:
    model, (x, y) = make_net("tanh"), make_batch("mse")
    H = dense_hessian(model, F.mse_loss, x, y)
    with HessianOperator(model, F.mse_loss, x, y) as op:
        res = power_iteration(op.matvec, op.n, k=2, tol=1e-12, max_iter=3000, dtype=op.dtype)
    assert torch.allclose(res.values, top_eigs(H, 2)[0], rtol=1e-6)


# -- preconditioning ---------------------------------------------------------------------------
def test_preconditioned_sharpness_matches_dense() -> None:
    model, (x, y) = make_net("tanh"), make_batch("ce")
    H = dense_hessian(model, F.cross_entropy, x, y)
    diag = torch.rand(H.shape[0], generator=torch.Generator().manual_seed(2)) * 5 + 0.1
    s = diag.rsqrt()
    ref = top_eigs(s[:, None] * H * s[None, :], 2)[0]
    flat = sharpness(
        model, F.cross_entropy, x, y, k=2, tol=1e-10, max_iter=200, preconditioner=diag
    )
    parts, offset = [], 0
    for p in model.parameters():
        parts.append(diag[offset : offset + p.numel()].view(p.shape))
        offset += p.numel()
    per_param = sharpness(
        model, F.cross_entropy, x, y, k=2, tol=1e-10, max_iter=200, preconditioner=parts
    )
    assert torch.allclose(flat, ref, rtol=1e-8) and torch.allclose(per_param, ref, rtol=1e-8)
    assert not torch.allclose(ref, top_eigs(H, 2)[0], rtol=1e-2)  # P actually matters


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_preconditioner_against_hand_computation(amsgrad: bool) -> None:
    model, (x, y) = make_net("tanh"), make_batch("ce")
    lr, (b1, b2), eps = 1e-2, (0.8, 0.95), 1e-6
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(b1, b2), eps=eps, amsgrad=amsgrad)
    params = list(model.parameters())
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    vmax = [torch.zeros_like(p) for p in params]
    steps = 4
    for _ in range(steps):
        before = [p.detach().clone() for p in params]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        for i, p in enumerate(params):
            m[i] = b1 * m[i] + (1 - b1) * p.grad
            v[i] = b2 * v[i] + (1 - b2) * p.grad**2
            vmax[i] = torch.maximum(vmax[i], v[i])
        opt.step()
    P = adam_preconditioner(opt, model.parameters())
    for i, p in enumerate(params):
        second = vmax[i] if amsgrad else v[i]
        hand = (1 - b1**steps) * ((second / (1 - b2**steps)).sqrt() + eps)
        assert torch.allclose(P[i], hand, rtol=1e-10, atol=0)
        # the real Adam step is theta -= lr * P^-1 m_t
        assert torch.allclose(before[i] - p.detach(), lr * m[i] / P[i], rtol=1e-8, atol=1e-14)
    vals = sharpness(model, F.cross_entropy, x, y, tol=1e-8, max_iter=200, preconditioner=P)
    assert vals.shape == (1,) and vals[0] > 0


def test_adam_preconditioner_requires_state() -> None:
    model = make_net("tanh")
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="step the optimizer"):
        adam_preconditioner(opt)


def _diverges(opt_factory, curvature: float) -> bool:
    w = nn.Parameter(torch.ones(1))
    opt = opt_factory([w])
    for _ in range(3000):
        opt.zero_grad()
        (0.5 * curvature * w**2).sum().backward()
        opt.step()
    return bool(w.abs() > 1.0)


@pytest.mark.parametrize(
    "factory",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.1),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    ],
)
def test_stability_threshold_separates_stable_from_unstable(factory) -> None:
    threshold = stability_threshold(factory([nn.Parameter(torch.ones(1))]))
    assert not _diverges(factory, 0.98 * threshold)
    assert _diverges(factory, 1.02 * threshold)


def test_threshold_formulas() -> None:
    assert stability_threshold("gd", 0.01) == pytest.approx(200.0)
    assert stability_threshold("heavy_ball", 0.01, beta=0.9) == pytest.approx(380.0)
    assert stability_threshold("adam", 0.01) == pytest.approx(3800.0)  # 38 / lr
    opt = torch.optim.AdamW([nn.Parameter(torch.ones(1))], lr=1e-3, betas=(0.9, 0.999))
    assert stability_threshold(opt) == pytest.approx(38000.0)
    with pytest.raises(ValueError, match="beta"):
        stability_threshold("momentum", 0.1)


# -- trace and density ----------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["hutchinson", "hutch++"])
def test_trace_within_stated_error(estimator: str) -> None:
    model, (x, y) = make_net("bn"), make_batch("ce")
    H = dense_hessian(model, F.cross_entropy, x, y)
    est = hessian_trace(model, F.cross_entropy, x, y, num_matvecs=150, estimator=estimator)
    exact = float(torch.trace(H))
    assert abs(est.mean - exact) <= 4 * est.stderr
    if estimator == "hutchinson":  # the stated error matches the estimator's true spread
        true_sd = math.sqrt(2 * float((H**2).sum() - (torch.diag(H) ** 2).sum()) / 150)
        assert 0.6 * true_sd <= est.stderr <= 1.6 * true_sd
    else:
        assert est.n_matvec == 150


def test_spectral_density_mass_matches_dense_histogram() -> None:
    model, (x, y) = make_net("relu"), make_batch("mse", n=40)
    H = dense_hessian(model, F.mse_loss, x, y)
    eigs = torch.linalg.eigvalsh(H)
    dens = spectral_density(model, F.mse_loss, x, y, num_probes=20, num_steps=25)
    assert torch.all(dens.weights >= 0)
    assert float(dens.weights.sum()) == pytest.approx(1.0, abs=1e-12)
    lo, hi = float(eigs.min()), float(eigs.max())
    edges = torch.tensor([lo - 1e-3, -0.05, 0.05, 0.25 * hi, hi + 1e-3])
    bins = zip(edges[:-1], edges[1:], strict=True)
    ref_mass = torch.tensor([float(((eigs >= a) & (eigs < b)).double().mean()) for a, b in bins])
    mass = dens.histogram(edges)
    assert float(mass.sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(mass, ref_mass, atol=0.08)
    grid = torch.linspace(lo - 2, hi + 2, 4001)
    smooth = dens.on_grid(grid, sigma=0.05)
    assert float(torch.trapezoid(smooth, grid)) == pytest.approx(1.0, abs=1e-6)
    # the first moment is a Hutchinson estimate of tr(H)/n: check within 4 of its std devs
    mean = float((dens.nodes * dens.weights).sum())
    off_diag = float((H**2).sum() - (torch.diag(H) ** 2).sum())
    sd = math.sqrt(2 * off_diag / 20) / H.shape[0]
    assert abs(mean - float(eigs.mean())) <= 4 * sd


# -- state preservation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"chunk_size": 6}, {"method": "double"}, {"method": "fwd"}, {"eval_mode": False}],
)
def test_state_is_preserved(kwargs: dict) -> None:
    model, (x, y) = make_net("bn"), make_batch("ce")
    model[3].eval()  # mixed flags must come back as they were
    params = list(model.parameters())
    params[0].grad = torch.randn_like(params[0])
    params[2].grad = torch.zeros_like(params[2])  # others stay None
    before = snapshot(model)
    rng = torch.get_rng_state()
    res = hessian_eigenpairs(model, F.cross_entropy, x, y, k=2, tol=1e-6, **kwargs)
    assert_same_state(model, before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert res.converged
    trace = hessian_trace(model, F.cross_entropy, x, y, num_matvecs=9)
    spectral_density(model, F.cross_entropy, x, y, num_probes=1, num_steps=5)
    assert_same_state(model, before)
    assert math.isfinite(trace.mean)


def test_eval_mode_false_uses_batch_statistics() -> None:
    model, (x, y) = make_net("bn"), make_batch("ce")
    ev = hessian_eigenpairs(model, F.cross_entropy, x, y, tol=1e-10, max_iter=200)
    tr = hessian_eigenpairs(model, F.cross_entropy, x, y, tol=1e-10, max_iter=200, eval_mode=False)
    assert not torch.allclose(ev.values, tr.values, rtol=1e-3)


# -- warm start ----------------------------------------------------------------------------------
def test_warm_start_needs_fewer_products() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 24), nn.Tanh(), nn.Linear(24, 5))
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(64, 8, generator=g), torch.randint(0, 5, (64,), generator=g)
    first = hessian_eigenpairs(model, F.cross_entropy, x, y, tol=1e-8, max_iter=200)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    cold = hessian_eigenpairs(model, F.cross_entropy, x, y, tol=1e-8, max_iter=200)
    warm = hessian_eigenpairs(
        model, F.cross_entropy, x, y, tol=1e-8, max_iter=200, v0=first.vectors[0]
    )
    assert warm.values[0] == pytest.approx(float(cold.values[0]), rel=1e-7)
    assert warm.n_matvec < cold.n_matvec


# An eigenvalue overtaking the tracked one (edge of stability): the operator of the review, top
# eigenvalues 10 and 9 over a spread 8..-1 (n = 2000), warm-started at the eigenvector of 9. The
# unguarded solver stopped after 1-2 products at 9, reporting convergence.
N_OVERTAKEN = 2000


@pytest.fixture(scope="module")
def overtaken() -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, u2)``: a dense symmetric A with spectrum 10, 9, linspace(8, -1), and the unit
    eigenvector of 9."""
    n, g = N_OVERTAKEN, torch.Generator().manual_seed(7)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    spectrum = torch.cat(
        [torch.tensor([10.0, 9.0], dtype=torch.float64), torch.linspace(8.0, -1.0, n - 2)]
    )
    A = (Q * spectrum) @ Q.t()
    return (A + A.t()) / 2, Q[:, 1].clone()


def _near(u: torch.Tensor, noise: float) -> torch.Tensor:
    r = torch.randn(u.numel(), generator=torch.Generator().manual_seed(99), dtype=u.dtype)
    return u + noise * r / r.norm()


@pytest.mark.parametrize("noise", [0.0, 1e-5])
@pytest.mark.parametrize("tol", [1e-4, 1e-2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_warm_start_finds_overtaking_eigenvalue(overtaken, noise, tol, seed) -> None:
    A, u2 = overtaken
    res = lanczos_topk(
        lambda v: A @ v,
        N_OVERTAKEN,
        tol=tol,
        v0=_near(u2, noise),
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(seed),
    )
    assert res.converged
    assert abs(float(res.values[0]) - 10.0) <= tol * 10.0
    assert res.n_matvec >= MIN_KRYLOV_DIM


def test_unguarded_warm_start_is_what_failed(overtaken) -> None:
    """Without blend and minimum Krylov size the residual test accepts the eigenvalue 9."""
    A, u2 = overtaken
    res = lanczos_topk(
        lambda v: A @ v, N_OVERTAKEN, v0=_near(u2, 1e-5), dtype=torch.float64,
        generator=torch.Generator().manual_seed(0), warm_blend=0.0, min_iter=1,
    )  # fmt: skip
    assert res.converged and res.n_matvec <= 2
    assert float(res.values[0]) == pytest.approx(9.0, abs=1e-3)


@pytest.mark.parametrize("noise", [0.0, 1e-5])
def test_sharpness_warm_start_finds_overtaking_eigenvalue(overtaken, noise) -> None:
    """The same through the public API: a quadratic model whose Hessian is exactly A."""
    A, u2 = overtaken

    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(N_OVERTAKEN))
            self.register_buffer("A", A)

        def forward(self, x):  # per-sample loss 0.5 x_i w^T A w, mean over the batch
            return 0.5 * x * (self.w @ self.A @ self.w)

    model, x = Quadratic(), torch.ones(2)
    loss = lambda out, _: out.mean()  # noqa: E731
    vals = sharpness(model, loss, x, x, v0=_near(u2, noise))
    assert abs(float(vals[0]) - 10.0) <= 1e-4 * 10.0
    res = hessian_eigenpairs(model, loss, x, x, tol=1e-2, v0=_near(u2, noise))
    assert res.converged and res.n_matvec >= MIN_KRYLOV_DIM
    assert abs(float(res.values[0]) - 10.0) <= 1e-2 * 10.0


def test_returned_vectors_carry_no_subnormals() -> None:
    """Warm starts fed back call after call must not decay into (slow) subnormal floats."""
    model = make_net("tanh").float()
    model.register_parameter("unused", nn.Parameter(torch.zeros(50, dtype=torch.float32)))
    x, y = make_batch("ce")
    assert next(model.parameters()) is model.unused  # a module's own parameters come first
    used = sum(p.numel() for p in model.parameters()) - 50
    # tiny but normal floats in null directions of H: the Lanczos filter shrinks them further
    v0 = torch.cat([torch.full((50,), 1e-37), torch.ones(used)]).float()
    res = hessian_eigenpairs(model, F.cross_entropy, x.float(), y, tol=1e-4, max_iter=60, v0=v0)
    vec = res.vectors[0]
    tiny = torch.finfo(torch.float32).tiny
    assert float(vec[50:].norm()) == pytest.approx(1.0, rel=1e-5)
    assert not bool(((vec != 0) & (vec.abs() < tiny)).any())


def test_convergence_warning_when_max_iter_too_small() -> None:
    model, (x, y) = make_net("tanh"), make_batch("ce")
    with pytest.warns(CurvatureConvergenceWarning):
        sharpness(model, F.cross_entropy, x, y, k=2, tol=1e-12, max_iter=3)


# -- bad input ---------------------------------------------------------------------------------
def _frozen(kind: str) -> nn.Module:
    net = make_net(kind)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


N_TANH = sum(p.numel() for p in make_net("tanh").parameters())
BAD_CASES = {  # name: (model factory, overrides factory, expected message)
    "empty batch": (make_net, lambda: {"inputs": torch.empty(0, D_IN)}, "empty batch"),
    "no trainable": (_frozen, dict, "no trainable parameters"),
    "k too large": (make_net, lambda: {"k": N_TANH + 1, "max_iter": 500}, "exceeds"),
    "k zero": (make_net, lambda: {"k": 0}, "k must be"),
    "flat precond shape": (
        make_net,
        lambda: {"preconditioner": torch.ones(N_TANH - 1)},
        "preconditioner has",
    ),
    "list precond shape": (
        make_net,
        lambda: {"preconditioner": [torch.ones(3)]},
        "preconditioner has 1 tensors",
    ),
    "non-positive precond": (
        make_net,
        lambda: {"preconditioner": torch.cat([torch.ones(N_TANH - 1), torch.zeros(1)])},
        "strictly positive",
    ),
    "nan loss": (
        make_net,
        lambda: {"inputs": torch.full((N_SAMPLES, D_IN), float("nan"))},
        "loss is not finite",
    ),
    "v0 shape": (make_net, lambda: {"v0": torch.ones(5)}, "v0 has 5 entries"),
    "target size": (make_net, lambda: {"targets": torch.zeros(3, dtype=torch.long)}, "batch"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
@pytest.mark.parametrize("method", ["reuse", "double"])
def test_bad_input_raises_value_error(case: str, method: str) -> None:
    factory, override, message = BAD_CASES[case]
    model = factory("tanh")
    x, y = make_batch("ce")
    args = {"inputs": x, "targets": y, "k": 1, "tol": 1e-6, "max_iter": 50}
    args.update(override())
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        hessian_eigenpairs(
            model,
            F.cross_entropy,
            args.pop("inputs"),
            args.pop("targets"),
            method=method,
            **args,
        )
    assert_same_state(model, before)


def test_sharpness_signature_and_return_types() -> None:
    import inspect

    sig = inspect.signature(sharpness)
    assert list(sig.parameters) == [
        "model", "loss_fn", "inputs", "targets", "k", "tol", "max_iter", "preconditioner",
        "chunk_size", "v0", "return_vectors",
    ]  # fmt: skip
    defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not p.empty}
    assert defaults == {
        "k": 1, "tol": 1e-4, "max_iter": 100, "preconditioner": None, "chunk_size": None,
        "v0": None, "return_vectors": False,
    }  # fmt: skip
    model, (x, y) = make_net("tanh"), make_batch("ce")
    vals = sharpness(copy.deepcopy(model), F.cross_entropy, x, y)
    assert isinstance(vals, torch.Tensor) and vals.shape == (1,)
    with torch.no_grad():  # callers in evaluation code: gradients are re-enabled internally
        again = sharpness(model, F.cross_entropy, x, y)
    assert torch.allclose(again, vals, rtol=1e-12)
