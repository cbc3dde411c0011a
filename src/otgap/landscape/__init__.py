"""Loss landscapes: planes through parameter space and batched loss grids over them."""

from otgap.landscape.grid import BatchedLoss, loss_at_point_loop, loss_grid
from otgap.landscape.planes import PLANES, Plane, grid_axes, paper_plane, pca_plane, project

__all__ = [
    "PLANES",
    "BatchedLoss",
    "Plane",
    "grid_axes",
    "loss_at_point_loop",
    "loss_grid",
    "paper_plane",
    "pca_plane",
    "project",
]
