"""The exact input-layer reduction of otgap.curvature.reduce, checked against dense Hessians of
the *unreduced* model (float64): batches narrower than the input, so the reduction applies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from otgap.curvature import (
    HessianOperator,
    hessian_eigenpairs,
    hessian_trace,
    sharpness,
    spectral_density,
)
from otgap.curvature.reduce import find_input_layer
from otgap.models.mlp import MLP

from .test_curvature import (  # noqa: F401  (the autouse fixture: float64, one thread)
    _float64_single_thread,
    assert_same_state,
    dense_hessian,
    snapshot,
    top_eigs,
)

N, D_IN, HIDDEN, D_OUT = 6, 15, 5, 3  # N < D_IN: the Hessian has HIDDEN * (D_IN - N) zeros


def batch(loss: str, shape=(D_IN,), seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, *shape, generator=g)
    y = torch.randn(N, D_OUT, generator=g) if loss == "mse" else torch.randint(0, D_OUT, (N,))
    return x, y


def sequential(act: type[nn.Module] = nn.Tanh) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D_IN, HIDDEN), act(), nn.Linear(HIDDEN, D_OUT))


LOSSES = {"mse": F.mse_loss, "ce": F.cross_entropy}


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_reduced_topk_matches_dense_hessian(loss: str, act) -> None:
    model, (x, y) = sequential(act), batch(loss)
    H = dense_hessian(model, LOSSES[loss], x, y)
    ref, _ = top_eigs(H, 3)
    res = hessian_eigenpairs(model, LOSSES[loss], x, y, k=3, tol=1e-10, max_iter=200)
    assert res.reduced
    assert ((res.values - ref).abs() / ref.abs()).max() <= 1e-6
    for lam, u in zip(res.values, res.vectors, strict=True):  # eigenvectors of the full matrix
        assert u.shape == (H.shape[0],)
        assert (H @ u - lam * u).norm() <= 1e-6 * abs(float(ref[0]))
    full = hessian_eigenpairs(model, LOSSES[loss], x, y, k=3, tol=1e-10, max_iter=200, reduce=False)
    assert not full.reduced and torch.allclose(full.values, res.values, rtol=1e-8)


def test_project_mlp_with_flatten_is_reduced_and_state_restored() -> None:
    torch.manual_seed(3)
    model = MLP((3, 5), D_OUT, hidden=(HIDDEN, 4), activation="tanh").double().train()
    x, y = batch("ce", shape=(3, 5))
    assert find_input_layer(model, x) is model.net[1]
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = snapshot(model)
    H = dense_hessian(model, F.cross_entropy, x, y)
    vals, vecs = sharpness(model, F.cross_entropy, x, y, k=2, tol=1e-10, return_vectors=True)
    assert torch.allclose(vals, top_eigs(H, 2)[0], rtol=1e-7)
    assert (H @ vecs[0] - vals[0] * vecs[0]).norm() <= 1e-6 * float(vals[0])
    assert_same_state(model, before)
    assert "forward" not in model.net[1].__dict__  # the patched forward is gone


def test_negative_definite_reduced_part_returns_exact_zeros() -> None:
    """Loss -0.5 |W x - y|^2 (linear model): H = -(X^T X / N) (x) I is negative semidefinite; the
    reduced part is negative definite, so the top algebraic values are the exact zeros."""
    torch.manual_seed(0)
    model = nn.Linear(D_IN, 2, bias=False)
    x, _ = batch("mse")
    y = torch.randn(N, 2)

    def loss(out, target):
        return -0.5 * ((out - target) ** 2).sum(1).mean()

    H = dense_hessian(model, loss, x, y)
    res = hessian_eigenpairs(model, loss, x, y, k=3, tol=1e-10, max_iter=100)
    assert res.reduced
    assert torch.equal(res.values[:2], torch.zeros(2))
    assert float(torch.linalg.eigvalsh(H)[-1]) == pytest.approx(0.0, abs=1e-12)
    assert float(res.values[2]) <= 1e-12
    for u in res.vectors[:2]:
        assert (H @ u).norm() <= 1e-12 and float(u.norm()) == pytest.approx(1.0)
    assert abs(float(res.vectors[0] @ res.vectors[1])) <= 1e-12


class _Shifted(nn.Module):
    """The first Linear does not see the inputs themselves (they are shifted first)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = sequential()

    def forward(self, x):
        return self.body(x + 0.5)


class _Penalised(nn.Module):
    """The first layer's weight is used a second time, outside the layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = sequential()

    def forward(self, x):
        w = self.body[0].weight
        return self.body(x) + 0.1 * (w**2).sum()


@pytest.mark.parametrize("cls", [_Shifted, _Penalised])
def test_runtime_checks_fall_back_to_the_full_operator(cls) -> None:
    model, (x, y) = cls(), batch("mse")
    assert find_input_layer(model, x) is not None  # structurally a candidate...
    H = dense_hessian(model, F.mse_loss, x, y)
    res = hessian_eigenpairs(model, F.mse_loss, x, y, k=2, tol=1e-10, max_iter=200)
    assert not res.reduced  # ...but the runtime checks refuse it
    assert torch.allclose(res.values, top_eigs(H, 2)[0], rtol=1e-7)
    assert "forward" not in model.body[0].__dict__


def test_not_applied_where_it_does_not_fit() -> None:
    model = sequential()
    x, y = batch("mse")
    wide = torch.randn(D_IN + 1, D_IN)  # more samples than input features
    assert find_input_layer(model, wide) is None
    model[0].weight.requires_grad_(False)  # frozen input layer
    assert find_input_layer(model, x) is None
    model[0].weight.requires_grad_(True)
    with HessianOperator(model, F.mse_loss, x, y, chunk_size=2, reduce=True) as op:
        assert op.reduction is None and op.n == op.n_params  # chunked batches stay unreduced
    diag = torch.ones(sum(p.numel() for p in model.parameters()))
    res = hessian_eigenpairs(model, F.mse_loss, x, y, tol=1e-8, preconditioner=diag)
    assert not res.reduced


def test_warm_start_is_mapped_and_null_space_start_is_ignored() -> None:
    model, (x, y) = sequential(), batch("mse")
    H = dense_hessian(model, F.mse_loss, x, y)
    ref = float(top_eigs(H, 1)[0][0])
    first = hessian_eigenpairs(model, F.mse_loss, x, y, tol=1e-10, max_iter=200)
    warm = hessian_eigenpairs(model, F.mse_loss, x, y, tol=1e-10, max_iter=200, v0=first.vectors[0])
    assert warm.reduced and float(warm.values[0]) == pytest.approx(ref, rel=1e-8)
    # a start vector with no component in the reduced space (a null eigenvector of H)
    with HessianOperator(model, F.mse_loss, x, y, reduce=True) as op:
        null = op.reduction.null_vectors(1, torch.Generator().manual_seed(0))[0]
    assert (H @ null).norm() <= 1e-12
    res = hessian_eigenpairs(model, F.mse_loss, x, y, tol=1e-10, max_iter=200, v0=null)
    assert float(res.values[0]) == pytest.approx(ref, rel=1e-8)


def test_mapping_preserves_inner_products() -> None:
    model, (x, y) = sequential(), batch("mse")
    with HessianOperator(model, F.mse_loss, x, y, reduce=True) as op:
        red = op.reduction
        assert red is not None and op.n == red.n_reduced < op.n_params
        u = torch.randn(2, op.n, generator=torch.Generator().manual_seed(1))
        full = red.to_full(u)
        assert torch.allclose(full @ full.t(), u @ u.t())
        assert torch.allclose(red.to_reduced(full), u)
        # H_full (J^T u) == J^T (H_red u): the reduced product is the full one, mapped
        H = dense_hessian(model, F.mse_loss, x, y)
        assert torch.allclose(red.to_full(op.matvec(u[0])), H @ full[0], atol=1e-10)


def test_trace_on_reduced_operator_is_exact_with_a_full_sketch() -> None:
    """Hutch++ is exact once its sketch spans the range of H, whose rank is at most n_reduced:
    3 * n_reduced products, on the reduced operator and (as a cross-check) on the full one."""
    model, (x, y) = sequential(), batch("ce")
    H = dense_hessian(model, F.cross_entropy, x, y)
    with HessianOperator(model, F.cross_entropy, x, y, reduce=True) as op:
        n_red = op.n
    assert n_red < H.shape[0]
    est = hessian_trace(model, F.cross_entropy, x, y, num_matvecs=3 * n_red)
    assert est.mean == pytest.approx(float(torch.trace(H)), rel=1e-8)
    plain = hessian_trace(model, F.cross_entropy, x, y, num_matvecs=3 * n_red, reduce=False)
    assert plain.mean == pytest.approx(float(torch.trace(H)), rel=1e-8)


def test_density_adds_the_exact_null_mass() -> None:
    model, (x, y) = sequential(nn.ReLU), batch("mse")
    H = dense_hessian(model, F.mse_loss, x, y)
    eigs = torch.linalg.eigvalsh(H)
    dens = spectral_density(model, F.mse_loss, x, y, num_probes=20, num_steps=60)
    with HessianOperator(model, F.mse_loss, x, y, reduce=True) as op:
        share = op.n / op.n_params
    assert float(dens.nodes[-1]) == 0.0
    assert float(dens.weights[-1]) == pytest.approx(1.0 - share)
    assert float(dens.weights.sum()) == pytest.approx(1.0, abs=1e-12)
    lo, hi = float(eigs.min()), float(eigs.max())
    edges = torch.tensor([lo - 1e-3, -1e-6, 1e-6, 0.25 * hi, hi + 1e-3])
    bins = list(zip(edges[:-1], edges[1:], strict=True))
    ref_mass = torch.tensor([float(((eigs >= a) & (eigs < b)).double().mean()) for a, b in bins])
    assert torch.allclose(dens.histogram(edges), ref_mass, atol=0.08)


def test_operator_reduces_the_weight_it_finds_on_entering() -> None:
    """The reduced weight is taken when the operator is entered, not when it is built."""
    model, (x, y) = sequential(), batch("mse")
    op = HessianOperator(model, F.mse_loss, x, y, reduce=True)
    with torch.no_grad():
        model[0].weight.mul_(1.5)
    H = dense_hessian(model, F.mse_loss, x, y)
    with op:
        u = torch.randn(op.n, generator=torch.Generator().manual_seed(2))
        full = op.reduction.to_full(u)
        assert torch.allclose(op.reduction.to_full(op.matvec(u)), H @ full, atol=1e-10)
