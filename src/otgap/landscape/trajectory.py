"""The loss landscape around one training trajectory, on the paper's plane and on Li et al.'s.

For each plane: the trajectory's plane coordinates (least squares), a ``G x G`` loss grid over the
coordinates' bounds padded by a fraction, the loss at each projected point (so a drawn path lies on
the drawn surface) and each snapshot's distance from the plane. The loss at the snapshots
themselves (off the plane) is kept once. Arrays are named ``<plane>_<what>`` so that one ``.npz``
holds both planes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from otgap.landscape.grid import BatchedLoss, LossFn
from otgap.landscape.planes import PLANES, grid_axes, project


def finite_rows(snapshots: np.ndarray) -> np.ndarray:
    """Boolean mask of snapshots whose every entry is finite (a diverged run may end in NaN/inf)."""
    return np.all(np.isfinite(np.asarray(snapshots)), axis=1)


def trajectory_landscape(
    model: nn.Module,
    loss_fn: LossFn,
    snapshots: np.ndarray,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    grid: int = 40,
    padding: float = 0.4,
    planes: Sequence[str] = ("paper", "pca"),
    chunk_size: int = 64,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Loss grids and trajectory coordinates on each plane in ``planes``.

    Snapshots with non-finite entries are left out of the planes (``snapshot_used`` marks the rows
    kept); their coordinates and losses are NaN. Losses that overflow are stored as they come
    (inf/NaN); plots mask them. With fewer than two distinct finite snapshots (a run that
    diverged at once) there is no plane: every grid, coordinate and loss is NaN, so the run still
    has a landscape file and shows up as diverged instead of failing the workflow.
    """
    snaps = np.asarray(snapshots, dtype=np.float64)
    used = finite_rows(snaps)
    if used.sum() < 2 or np.array_equal(snaps[used][0], snaps[used][-1]):
        return _empty_landscape(len(snaps), used, grid, planes)
    kept = snaps[used]
    ev = BatchedLoss(model, loss_fn, inputs, targets, chunk_size=chunk_size, batch_size=batch_size)
    out: dict[str, np.ndarray] = {"snapshot_used": used}
    true_loss = np.full(len(snaps), np.nan)
    true_loss[used] = ev.at_vectors(kept)
    out["trajectory_loss"] = true_loss
    for kind in planes:
        plane = PLANES[kind](kept)
        coords, resid = project(plane, kept)
        alphas, betas = grid_axes(coords, grid, padding)
        full_coords = np.full((len(snaps), 2), np.nan)
        full_coords[used] = coords
        full_resid = np.full(len(snaps), np.nan)
        full_resid[used] = resid
        path = np.full(len(snaps), np.nan)
        path[used] = ev.on_plane(plane, coords)
        out[f"{kind}_alphas"] = alphas
        out[f"{kind}_betas"] = betas
        out[f"{kind}_loss"] = ev.grid(plane, alphas, betas)
        out[f"{kind}_coords"] = full_coords
        out[f"{kind}_path_loss"] = path
        out[f"{kind}_residual"] = full_resid
        out[f"{kind}_explained_variance"] = np.asarray(plane.explained_variance)
    return out


def _empty_landscape(
    n_snapshots: int, used: np.ndarray, grid: int, planes: Sequence[str]
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {
        "snapshot_used": used,
        "trajectory_loss": np.full(n_snapshots, np.nan),
    }
    for kind in planes:
        out[f"{kind}_alphas"] = np.linspace(-1.0, 1.0, grid)
        out[f"{kind}_betas"] = np.linspace(-1.0, 1.0, grid)
        out[f"{kind}_loss"] = np.full((grid, grid), np.nan)
        out[f"{kind}_coords"] = np.full((n_snapshots, 2), np.nan)
        out[f"{kind}_path_loss"] = np.full(n_snapshots, np.nan)
        out[f"{kind}_residual"] = np.full(n_snapshots, np.nan)
        out[f"{kind}_explained_variance"] = np.full(2, np.nan)
    return out
