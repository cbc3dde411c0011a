"""Figure of the ODE-solving networks (systems stage): per problem, the trained trial solution
against its reference, the pointwise error along t, and the residual loss and error over training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from otgap.plots.style import PALETTE, TRUTH_COLOUR, apply_style, plt


def ode_solver_figure(
    problems: Sequence[str],
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    descriptions: Mapping[str, str] | None = None,
):
    """One row per problem: (solution vs reference, |error| along t, loss and error in training).

    ``arrays[name]`` holds the arrays of ``otgap.models.ode_solver.evaluate_problem``.
    """
    if not problems:
        raise ValueError("the figure needs at least one problem")
    apply_style()
    fig, axes = plt.subplots(len(problems), 3, figsize=(12, 2.8 * len(problems)), squeeze=False)
    for row, name in zip(axes, problems, strict=True):
        a = arrays[name]
        t, pred, ref = a["t"], a["pred"], a["ref"]
        ax = row[0]
        for i in range(pred.shape[1]):
            label = f"component {i + 1}" if pred.shape[1] > 1 else "network"
            ax.plot(t, pred[:, i], color=PALETTE[i], lw=1.8, label=label)
            ax.plot(t, ref[:, i], color=TRUTH_COLOUR, lw=0.8, ls="--")
        ax.plot([], [], color=TRUTH_COLOUR, lw=0.8, ls="--", label="reference")
        bounds = a["record_window_bounds"]
        for edge in bounds[1:, 0]:
            ax.axvline(edge, color="0.6", lw=0.5, ls=":")
        title = (descriptions or {}).get(name, name)
        ax.set_title(title)
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
        ax = row[1]
        err = np.abs(pred - ref).max(axis=1)
        ax.semilogy(t[1:], err[1:], color=PALETTE[0])  # zero at t0 by construction
        ax.set_xlabel("t")
        ax.set_ylabel("max abs error")
        ax.set_title(f"{name}: error along t ({len(bounds)} window(s))")
        ax = row[2]
        windows = a["record_window"]
        iteration = a["record_iteration"]
        for k in np.unique(windows):
            sel = windows == k
            first = k == windows[0]
            ax.semilogy(
                iteration[sel],
                a["record_loss"][sel],
                color=PALETTE[0],
                lw=1.0,
                label="residual loss" if first else None,
                alpha=0.8,
            )
            ax.semilogy(
                iteration[sel],
                a["record_error"][sel],
                color=PALETTE[3],
                lw=1.0,
                label="max abs error" if first else None,
                alpha=0.8,
            )
        ax.set_xlabel("iteration in window (Adam, then L-BFGS evaluations)")
        ax.set_title(f"{name}: training")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
