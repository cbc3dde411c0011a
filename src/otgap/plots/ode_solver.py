"""Figure of the ODE-solving networks (systems stage): per problem and for every seed, the trained
trial solution against its reference, the pointwise error along t beside the classical solver's,
and each window's a-posteriori error estimate against its true error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import NullFormatter

from otgap.plots.style import PALETTE, TRUTH_COLOUR, apply_style, plt


def ode_solver_figure(
    problems: Sequence[str],
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    descriptions: Mapping[str, str] | None = None,
    tols: Mapping[str, float | None] | None = None,
):
    """One row per problem: (solutions of every seed vs reference, |error| along t of every seed
    and of the classical solver, per-window estimate vs true error of every seed).

    ``arrays[name]`` holds the arrays of ``otgap.models.ode_solver.evaluate_seeds`` and, when
    present, ``classical_error`` (the classical solver's max abs error along ``t``).
    """
    if not problems:
        raise ValueError("the figure needs at least one problem")
    apply_style()
    fig, axes = plt.subplots(len(problems), 3, figsize=(13, 2.9 * len(problems)), squeeze=False)
    for row, name in zip(axes, problems, strict=True):
        a = arrays[name]
        t, pred, ref, seeds = a["t"], a["pred"], a["ref"], a["seeds"]
        tol = (tols or {}).get(name)
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(seeds))]
        ax = row[0]
        for i in range(ref.shape[1]):
            ax.plot(t, ref[:, i], color=TRUTH_COLOUR, lw=2.4, alpha=0.35)
            for s, colour in enumerate(colours):
                ls = "-" if i == 0 else "--"
                label = f"seed {seeds[s]}" if i == 0 else None
                ax.plot(t, pred[s, :, i], color=colour, lw=0.9, ls=ls, label=label)
        ax.plot([], [], color=TRUTH_COLOUR, lw=2.4, alpha=0.35, label="reference")
        ax.set_title((descriptions or {}).get(name, name), fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=6, ncol=2)
        ax = row[1]
        for s, colour in enumerate(colours):
            err = np.abs(pred[s] - ref).max(axis=1)
            ax.semilogy(t[1:], err[1:], color=colour, lw=0.9)  # zero at t0 by construction
        if "classical_error" in a:
            ce = np.maximum(a["classical_error"], 1e-17)
            ax.semilogy(t[1:], ce[1:], color="0.2", lw=0.9, ls="--", label="classical solver")
        if tol is not None:
            ax.axhline(tol, color="0.4", lw=0.8, ls=":", label=f"tol {tol:g}")
        ax.set_xlabel("t")
        ax.set_ylabel("max abs error")
        ax.set_title(f"{name}: error along t, every seed", fontsize=9)
        ax.legend(fontsize=6)
        ax = row[2]
        est, true = a["window_estimate"], a["window_error"]
        for s, colour in enumerate(colours):
            ok = np.isfinite(est[s]) & np.isfinite(true[s])
            ax.loglog(
                np.maximum(true[s][ok], 1e-16),
                np.maximum(est[s][ok], 1e-16),
                "o",
                ms=3,
                color=colour,
            )
        finite = np.concatenate([est[np.isfinite(est)], true[np.isfinite(true)]])
        finite = finite[finite > 0]
        if finite.size:
            lo, hi = finite.min() / 2, finite.max() * 2
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--", label="estimate = error")
        if tol is not None:
            ax.axhline(tol, color="0.4", lw=0.8, ls=":", label=f"tol {tol:g}")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor log labels overlap
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("true max abs error on the window")
        ax.set_ylabel("error estimate")
        ax.set_title(f"{name}: per-window estimate", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
