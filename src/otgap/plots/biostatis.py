"""Learning curves of the BiostatisV6/AdamW arms (rule biostatis_table): test accuracy and loss
against epoch, one line per (arm, optimizer, lr) and seed.

The EoS stage and the CIFAR-10 benchmark hold out no validation part: the curves are of the test
part, which nothing here tunes on (no lr is selected from them).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from otgap.plots.style import PALETTE, apply_style, plt, save_figure

_STYLES = ("-", "--", ":", "-.")


def learning_curves(
    history: pd.DataFrame, pdf_path: str | os.PathLike, png_path: str | os.PathLike
):
    """``history``: rows with ``epoch``, ``test_acc`` (0-1), ``test_loss`` or ``train_loss``,
    ``optimizer``, ``lr``, ``seed`` and optionally ``arm``; the arm's colour is per
    (arm, optimizer, lr), the line style per seed."""
    need = {"epoch", "test_acc", "optimizer", "lr", "seed"}
    missing = sorted(need - set(history.columns))
    if missing:
        raise ValueError(f"learning curves: history lacks columns {missing}")
    h = history.copy()
    if "arm" not in h:
        h["arm"] = "eos"
    h["arm"] = h["arm"].fillna("eos")
    loss_col = "test_loss" if "test_loss" in h and h["test_loss"].notna().any() else "train_loss"
    apply_style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    seeds = sorted(h["seed"].unique())
    for i, ((arm, opt, lr), group) in enumerate(
        h.groupby(["arm", "optimizer", h["lr"].astype(float)], sort=True)
    ):
        colour = PALETTE[i % len(PALETTE)]
        label = f"{opt} lr={lr:.4g}" + ("" if arm == "eos" else f" ({arm})")
        for seed, run in group.groupby("seed"):
            run = run.sort_values("epoch")
            style = _STYLES[seeds.index(seed) % len(_STYLES)]
            first = seed == group["seed"].min()
            axes[0].plot(run["epoch"], 100 * run["test_acc"], style, color=colour, lw=1,
                         label=label if first else None)  # fmt: skip
            axes[1].plot(run["epoch"], run[loss_col], style, color=colour, lw=1)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel(loss_col.replace("_", " "))
    if np.all(h[loss_col].dropna() > 0):
        axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7, title=f"line style: seed {', '.join(map(str, seeds))}",
                   title_fontsize=7)  # fmt: skip
    fig.suptitle("BiostatisV6 and AdamW arms, every seed")
    save_figure(fig, pdf_path, png_path)
    plt.close(fig)
