"""Decision-boundary animations of the Landau stage (the Landau post's GIFs on scikit-learn's 2-D sets).

One frame per recorded epoch: the predicted class on a grid over [0, 1]^2 (the inputs' range),
the training points on top, the epoch and training accuracy in the title. Written as a GIF with
matplotlib's Pillow writer and the last frame as a PNG, both atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from otgap.io import atomic_path
from otgap.plots.style import PALETTE, apply_style, plt, save_figure

CLASS_COLOURS = ("#0072B2", "#D55E00")


def boundary_grid(resolution: int, margin: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """``(xx, yy)`` meshgrid over [-margin, 1 + margin]^2 with ``resolution`` points a side."""
    if resolution < 2:
        raise ValueError(f"boundary grid: resolution must be >= 2, got {resolution}")
    axis = np.linspace(-margin, 1 + margin, resolution, dtype=np.float32)
    return np.meshgrid(axis, axis)


def write_boundary_animation(
    x: np.ndarray,
    y: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    frames: Sequence[tuple[int, float, np.ndarray]],
    gif_path: str | os.PathLike,
    png_path: str | os.PathLike,
    title: str,
    fps: int = 4,
) -> None:
    """``frames``: ``(epoch, train accuracy, predicted class on the grid)`` per frame."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.colors import ListedColormap

    if not frames:
        raise ValueError("boundary animation: no frames to draw")
    apply_style()
    cmap = ListedColormap(["#cfe3f3", "#f6d3bd"])
    fig, ax = plt.subplots(figsize=(4.2, 4.2))

    def draw(i: int):
        epoch, acc, pred = frames[i]
        ax.clear()
        ax.pcolormesh(xx, yy, pred, cmap=cmap, vmin=0, vmax=1, shading="auto")
        ax.contour(xx, yy, pred, levels=[0.5], colors="k", linewidths=0.8)
        for c, colour in enumerate(CLASS_COLOURS):
            m = y == c
            ax.scatter(x[m, 0], x[m, 1], s=7, c=colour, edgecolors="none")
        ax.set_xlim(float(xx.min()), float(xx.max()))
        ax.set_ylim(float(yy.min()), float(yy.max()))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_title(f"{title}\nepoch {epoch}, train acc {100 * acc:.1f}%", fontsize=9)
        return ()

    anim = FuncAnimation(fig, draw, frames=len(frames), blit=False)
    with atomic_path(gif_path, suffix=".gif") as tmp:
        anim.save(tmp, writer=PillowWriter(fps=fps), dpi=80)
    draw(len(frames) - 1)
    save_figure(fig, png_path)
    plt.close(fig)


def noise_figure(runs, pdf_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Test accuracy against the input-noise level (sigma 0 = clean) per (model, optimizer): the
    mean over seeds as a line, every seed as a point (rule systems_landau_table)."""
    cols = sorted(
        (c for c in runs.columns if c.startswith("acc_noise_")), key=lambda c: float(c[10:])
    )
    sigmas = np.array([0.0, *[float(c[10:]) for c in cols]])
    apply_style()
    fig, ax = plt.subplots(figsize=(8.4, 4.2))
    for i, ((model, opt), group) in enumerate(runs.groupby(["model", "optimizer"], sort=False)):
        acc = 100 * group[["test_acc", *cols]].to_numpy(dtype=float)  # (seeds, sigmas)
        colour = PALETTE[i % len(PALETTE)]
        line = ("-", "--", ":")[(i // len(PALETTE)) % 3]  # past the palette: another line style
        ax.plot(sigmas, acc.mean(axis=0), line, color=colour, label=f"{model} + {opt}")
        jitter = (np.arange(len(acc)) - (len(acc) - 1) / 2) * 0.004
        for k, row in enumerate(acc):
            ax.plot(sigmas + jitter[k], row, "o", color=colour, ms=3, alpha=0.6)
    chance = runs["chance_acc"].max() if "chance_acc" in runs else None
    if chance is not None and np.isfinite(chance):
        ax.axhline(100 * chance, color="0.5", ls=":", lw=1, label="chance (most frequent class)")
    ax.set_xlabel("input noise $\\sigma$ (inputs in [0, 1])")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{runs['dataset'].iloc[0]}: accuracy under Gaussian input noise (lines: mean)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, pdf_path, png_path)
    plt.close(fig)
