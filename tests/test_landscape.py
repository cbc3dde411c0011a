"""Loss-landscape planes and batched grids, checked against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from otgap.landscape import (
    BatchedLoss,
    Plane,
    grid_axes,
    loss_at_point_loop,
    paper_plane,
    pca_plane,
    project,
)
from otgap.landscape.grid import flat_parameters


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3))


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 3),
    )


def _mse_onehot(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - F.one_hot(y, out.shape[-1]).to(out.dtype)) ** 2).sum(-1).mean()


def _random_trajectory(p: int, s: int, rng: np.random.Generator) -> np.ndarray:
    steps = rng.normal(size=(s - 1, p)) * np.linspace(1.0, 0.2, s - 1)[:, None]
    start = rng.normal(size=(1, p))
    return np.concatenate([start, start + np.cumsum(steps, axis=0)])


@pytest.mark.parametrize("kind", ["paper", "pca"])
def test_planes_are_orthonormal(kind):
    rng = np.random.default_rng(0)
    snaps = _random_trajectory(50, 9, rng)
    plane = paper_plane(snaps) if kind == "paper" else pca_plane(snaps)
    d = plane.directions
    np.testing.assert_allclose(d @ d.T, np.eye(2), atol=1e-12)
    assert 0 < plane.explained_variance[0] <= 1
    assert 0 <= plane.explained_variance[1] <= 1
    assert sum(plane.explained_variance) <= 1 + 1e-12


def test_paper_plane_definition():
    rng = np.random.default_rng(1)
    snaps = _random_trajectory(30, 8, rng)
    plane = paper_plane(snaps)
    np.testing.assert_allclose(plane.origin, snaps[0])
    delta = snaps[-1] - snaps[0]
    np.testing.assert_allclose(plane.d1, delta / np.linalg.norm(delta), atol=1e-12)
    # d2 lies in span(d1, PC2) of the mean-centred checkpoints (independent numpy reference).
    xc = snaps - snaps.mean(0)
    pc2 = np.linalg.svd(xc, full_matrices=False)[2][1]
    basis = np.stack([plane.d1, pc2]).T
    coef = np.linalg.lstsq(basis, plane.d2, rcond=None)[0]
    np.testing.assert_allclose(basis @ coef, plane.d2, atol=1e-10)
    # Trajectory starts at (0, 0) and ends on the d1 axis at |final - initial|.
    coords, _ = project(plane, snaps)
    np.testing.assert_allclose(coords[0], [0, 0], atol=1e-10)
    np.testing.assert_allclose(coords[-1], [np.linalg.norm(delta), 0], atol=1e-10)


def test_pca_plane_matches_numpy_svd():
    rng = np.random.default_rng(2)
    snaps = _random_trajectory(40, 12, rng)
    plane = pca_plane(snaps)
    diffs = snaps - snaps[-1]
    diffs = diffs - diffs.mean(0)
    _, s, vt = np.linalg.svd(diffs, full_matrices=False)
    for got, ref in zip(plane.directions, vt[:2], strict=True):
        assert abs(abs(got @ ref) - 1) < 1e-10  # same direction up to sign
    ratio = s**2 / np.sum(s**2)
    np.testing.assert_allclose(plane.explained_variance, ratio[:2], rtol=1e-10)
    np.testing.assert_allclose(plane.origin, snaps[-1])


def test_projection_recovers_coordinates_in_plane():
    rng = np.random.default_rng(3)
    p = 60
    q, _ = np.linalg.qr(rng.normal(size=(p, 2)))
    origin = rng.normal(size=p)
    true = rng.normal(size=(15, 2)) * [3.0, 0.5]
    points = origin + true @ q.T
    plane = Plane("test", origin, q[:, 0], q[:, 1], (0.0, 0.0))
    coords, resid = project(plane, points)
    np.testing.assert_allclose(coords, true, atol=1e-10)
    np.testing.assert_allclose(resid, 0, atol=1e-10)
    # A trajectory built inside a plane is reproduced exactly by the PCA plane too.
    pplane = pca_plane(points)
    _, resid2 = project(pplane, points)
    np.testing.assert_allclose(resid2, 0, atol=1e-9)
    assert sum(pplane.explained_variance) == pytest.approx(1.0, abs=1e-12)


def test_projection_with_non_orthonormal_directions_is_least_squares():
    rng = np.random.default_rng(4)
    p = 20
    d = rng.normal(size=(2, p))
    plane = Plane("skew", np.zeros(p), d[0], d[1], (0.0, 0.0))
    pts = rng.normal(size=(5, p))
    coords, _ = project(plane, pts)
    ref = np.linalg.lstsq(d.T, pts.T, rcond=None)[0].T
    np.testing.assert_allclose(coords, ref, atol=1e-10)


def test_grid_axes_padding():
    coords = np.array([[0.0, -1.0], [2.0, 1.0], [1.0, 0.0]])
    a, b = grid_axes(coords, 5, 0.4)
    np.testing.assert_allclose([a[0], a[-1]], [-0.8, 2.8])
    np.testing.assert_allclose([b[0], b[-1]], [-1.8, 1.8])
    assert len(a) == len(b) == 5


def test_degenerate_straight_line_trajectory():
    rng = np.random.default_rng(5)
    p = 10
    start, direction = rng.normal(size=p), rng.normal(size=p)
    snaps = start + np.linspace(0, 1, 6)[:, None] * direction
    for plane in (paper_plane(snaps), pca_plane(snaps)):
        np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-10)
        _, resid = project(plane, snaps)
        np.testing.assert_allclose(resid, 0, atol=1e-9)
    with pytest.raises(ValueError, match="identical"):
        paper_plane(np.stack([start, start]))
    with pytest.raises(ValueError, match="non-finite"):
        paper_plane(np.stack([start, start * np.nan]))


@pytest.mark.parametrize(
    ("make_model", "shape", "loss_fn"),
    [
        (_mlp, (12,), F.cross_entropy),
        (_mlp, (3, 4), _mse_onehot),
        (_cnn, (2, 4, 4), F.cross_entropy),
    ],
)
@pytest.mark.parametrize(("chunk", "batch"), [(7, None), (64, 9)])
@pytest.mark.parametrize("affine_head", [True, False])
def test_batched_grid_equals_per_point_loop(make_model, shape, loss_fn, chunk, batch, affine_head):
    torch.manual_seed(0)
    model = make_model().double()
    x = torch.randn(25, *shape, dtype=torch.float64)
    y = torch.randint(0, 3, (25,))
    p = flat_parameters(model).numel()
    rng = np.random.default_rng(6)
    snaps = flat_parameters(model).numpy() + _random_trajectory(p, 6, rng) * 0.3
    plane = paper_plane(snaps)
    alphas, betas = np.linspace(-1, 2, 6), np.linspace(-0.5, 0.7, 5)
    before = flat_parameters(model).clone()
    ev = BatchedLoss(
        model, loss_fn, x, y, chunk_size=chunk, batch_size=batch, affine_head=affine_head
    )
    assert (ev.split is not None) == affine_head  # both paths are exercised
    got = ev.grid(plane, alphas, betas)
    assert got.shape == (5, 6)
    ref = np.array(
        [
            [loss_at_point_loop(model, loss_fn, plane.point(a, b), x, y) for a in alphas]
            for b in betas
        ]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(flat_parameters(model), before)  # neither path leaves the model changed
    # Losses at arbitrary vectors (the trajectory's own snapshots) agree with the loop too.
    traj = ev.at_vectors(snaps)
    ref_traj = [loss_at_point_loop(model, loss_fn, s, x, y) for s in snaps]
    np.testing.assert_allclose(traj, ref_traj, rtol=1e-6, atol=1e-6)


def test_grid_rejects_batchnorm_without_statistics_and_mismatched_plane():
    model = nn.Sequential(
        nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)
    )
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    with pytest.raises(ValueError, match="BatchNorm1d without running statistics"):
        BatchedLoss(model, F.cross_entropy, x, y)
    # with running statistics: the shortcut (BatchNorm in the tail) equals the per-point loop
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()
    x = x.double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    ev = BatchedLoss(model, F.cross_entropy, x, y)
    assert ev.split is not None
    rng = np.random.default_rng(2)
    plane = pca_plane(_random_trajectory(flat_parameters(model).numel(), 4, rng))
    coords = rng.normal(size=(5, 2))
    ref = [loss_at_point_loop(model, F.cross_entropy, plane.point(a, b), x, y) for a, b in coords]
    np.testing.assert_allclose(ev.on_plane(plane, coords), ref, rtol=1e-9, atol=1e-12)
    ev = BatchedLoss(_mlp(), F.cross_entropy, torch.randn(5, 12), torch.randint(0, 3, (5,)))
    bad = Plane("bad", np.zeros(3), np.eye(3)[0], np.eye(3)[1], (0.0, 0.0))
    with pytest.raises(ValueError, match="do not match"):
        ev.grid(bad, np.zeros(2), np.zeros(2))


class _Wrapped(nn.Module):
    """A wrapper around a Sequential, like the project's classifiers; ``scale`` alters forward."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale


@pytest.mark.parametrize(("scale", "uses_split"), [(1.0, True), (2.0, False)])
def test_wrapped_sequential_uses_shortcut_only_when_forward_matches(scale, uses_split):
    torch.manual_seed(1)
    model = _Wrapped(scale).double()
    x, y = torch.randn(10, 2, 3, dtype=torch.float64), torch.randint(0, 3, (10,))
    ev = BatchedLoss(model, _mse_onehot, x, y, chunk_size=5)
    assert (ev.split is not None) == uses_split
    rng = np.random.default_rng(7)
    p = flat_parameters(model).numel()
    plane = pca_plane(_random_trajectory(p, 5, rng))
    coords = rng.normal(size=(11, 2))
    ref = [loss_at_point_loop(model, _mse_onehot, plane.point(a, b), x, y) for a, b in coords]
    np.testing.assert_allclose(ev.on_plane(plane, coords), ref, rtol=1e-6, atol=1e-6)


def test_project_classifiers_take_the_shortcut():
    from otgap.models.classifiers import CLASSIFIERS

    # Landau layers are not affine in their parameters (cosh(5 beta) multiplies w): no shortcut
    no_shortcut = {"landau1", "landau1_nobn", "landau2"}
    x = torch.randn(4, 1, 8, 8)
    for name in CLASSIFIERS:
        model = CLASSIFIERS[name]((1, 8, 8), 10)
        y = torch.zeros(4, dtype=torch.long)
        ev = BatchedLoss(model, F.cross_entropy, x, y)
        assert (ev.split is None) == (name in no_shortcut), name


@pytest.mark.parametrize("name", ["landau1", "landau2"])
def test_batchnorm_models_evaluate_in_eval_mode_like_the_loop(name):
    """BatchNorm models (landau1, landau2): batched grid losses equal a per-point forward pass in
    eval mode with the same running statistics, set from the inputs at one vector."""
    from otgap.landscape.grid import has_batchnorm, recalibrate_batchnorm
    from otgap.models.classifiers import CLASSIFIERS

    torch.manual_seed(3)
    model = CLASSIFIERS[name]((1, 4, 4), 3, **({"hidden": 5} if name == "landau2" else {}))
    model = model.double()
    assert has_batchnorm(model)
    x, y = torch.rand(12, 1, 4, 4, dtype=torch.float64), torch.arange(12) % 3
    recalibrate_batchnorm(model, x)
    bn = model.bn1
    h = model.llayer1(x.flatten(1)).detach()  # BatchNorm's input: its batch statistics, by hand
    torch.testing.assert_close(bn.running_mean, h.mean(0))
    torch.testing.assert_close(bn.running_var, h.var(0, unbiased=True))
    assert bn.momentum == 0.1 and model.training
    rng = np.random.default_rng(4)
    p = flat_parameters(model).numel()
    plane = pca_plane(flat_parameters(model).numpy() + 1e-2 * _random_trajectory(p, 4, rng))
    coords = 0.5 * rng.normal(size=(6, 2))
    ev = BatchedLoss(model, _mse_onehot, x, y, chunk_size=4)
    ref = [loss_at_point_loop(model, _mse_onehot, plane.point(a, b), x, y) for a, b in coords]
    np.testing.assert_allclose(ev.on_plane(plane, coords), ref, rtol=1e-9, atol=1e-12)
    # the running statistics matter: a train-mode (batch-statistics) loss differs
    model.train()
    train_mode = float(_mse_onehot(model(x), y).detach())
    assert (
        abs(train_mode - loss_at_point_loop(model, _mse_onehot, flat_parameters(model), x, y)) > 0
    )
