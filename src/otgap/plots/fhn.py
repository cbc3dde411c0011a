"""Figure 2 of Appendix A.1: six panels comparing the sequence models on FitzHugh-Nagumo.

A time series of one long rollout (t <= 200); B its phase portrait (first 800 points);
C interpolation RMSE by sampling condition (mean +- std over seeds, as the paper; the 95%
t-intervals are in the statistics table, and with few seeds they are too wide to draw); D the
regular-sampling ablation (extrapolation RMSE, regular grid against the focus condition);
E growth of the normalised rollout error (smoothed per seed, then mean +- std over seeds of its
logarithm, i.e. a geometric mean with a multiplicative band, since the errors span decades);
F distributions of per-sequence interpolation RMSE (test sequences of every seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from otgap.metrics.chaos import moving_average
from otgap.plots.style import TRUTH_COLOUR, model_colour, model_label

Curves = Mapping[tuple[str, str, int], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class FigureSpec:
    system: str
    focus_condition: str
    regular_condition: str | None
    models: Sequence[str]
    conditions: Sequence[str]
    seeds: Sequence[int]
    time_window: float = 200.0
    phase_points: int = 800
    error_points: int = 1500
    smoothing: int = 50


def _panel_label(ax, letter: str) -> None:
    ax.text(-0.12, 1.04, letter, transform=ax.transAxes, fontsize=13, fontweight="bold")


def _stat(stats: pd.DataFrame, system, condition, model, metric) -> tuple[float, float]:
    row = stats[
        (stats["system"] == system)
        & (stats["condition"] == condition)
        & (stats["model"] == model)
        & (stats["metric"] == metric)
    ]
    if row.empty:
        return np.nan, np.nan
    return float(row["mean"].iloc[0]), float(row["std"].iloc[0])


def _grouped_bars(ax, groups, models, value_fn) -> None:
    """Bars of ``value_fn(group, model) -> (mean, spread)``; the lower whisker stops above 0."""
    width = 0.8 / max(len(models), 1)
    for k, m in enumerate(models):
        xs, ys, lo, hi = [], [], [], []
        for g_i, g in enumerate(groups):
            mean, spread = value_fn(g, m)
            spread = spread if np.isfinite(spread) else 0.0
            xs.append(g_i - 0.4 + (k + 0.5) * width)
            ys.append(mean)
            lo.append(min(spread, 0.9 * mean) if np.isfinite(mean) else 0.0)
            hi.append(spread)
        ax.bar(
            xs, ys, width=width * 0.95, yerr=[lo, hi], color=model_colour(m), capsize=2,
            error_kw={"elinewidth": 0.8}, label=model_label(m),
        )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([str(g) for g in groups])


def _log_if_positive(ax, values) -> None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size and np.all(v > 0) and v.max() / v.min() > 20:
        ax.set_yscale("log")


def figure2(
    stats: pd.DataFrame,
    curves: Curves,
    truth: Mapping[str, np.ndarray],
    spec: FigureSpec,
):
    """Build the six-panel figure; ``truth`` holds ``rollout_t``, ``rollout_y``, ``rollout_context``
    of the focus condition's first seed, whose first trajectory panels A and B show."""
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    (ax_a, ax_b, ax_c), (ax_d, ax_e, ax_f) = axes
    seed0 = spec.seeds[0]
    focus = spec.focus_condition

    # A: time series of the first rollout, v component.
    rt = np.asarray(truth["rollout_t"])[0]
    ry = np.asarray(truth["rollout_y"])[0]
    rc = int(truth["rollout_context"])
    rel = rt - rt[0]
    keep = rel <= spec.time_window
    ax_a.plot(rel[keep], ry[keep, 0], color=TRUTH_COLOUR, lw=2.0, label="truth")
    for m in spec.models:
        c = curves.get((focus, m, seed0))
        if c is None:
            continue
        pred = np.asarray(c["rollout_pred"])[0]
        ax_a.plot(rel[keep], pred[keep, 0], color=model_colour(m), lw=1.0, alpha=0.85)
    ax_a.axvline(rel[rc - 1], color="0.5", ls=":", lw=1)
    ax_a.set_xlabel("time since rollout start")
    ax_a.set_ylabel("v")
    ax_a.set_ylim(np.nanmin(ry[:, 0]) - 1.0, np.nanmax(ry[:, 0]) + 1.0)
    ax_a.set_title(f"Rollout from {rc} given points ({focus}, seed {seed0})")

    # B: phase portrait.
    n = min(spec.phase_points, len(rt))
    for m in spec.models:
        c = curves.get((focus, m, seed0))
        if c is None:
            continue
        pred = np.asarray(c["rollout_pred"])[0]
        ax_b.plot(pred[:n, 0], pred[:n, 1], color=model_colour(m), lw=0.8, alpha=0.8)
    ax_b.plot(ry[:n, 0], ry[:n, 1], color=TRUTH_COLOUR, lw=1.8)
    pad = 0.5
    ax_b.set_xlim(ry[:n, 0].min() - pad, ry[:n, 0].max() + pad)
    ax_b.set_ylim(ry[:n, 1].min() - pad, ry[:n, 1].max() + pad)
    ax_b.set_xlabel("v")
    ax_b.set_ylabel("w")
    ax_b.set_title(f"Phase portrait (first {n} points)")

    # C: interpolation RMSE by condition.
    _grouped_bars(
        ax_c, spec.conditions, spec.models,
        lambda g, m: _stat(stats, spec.system, g, m, "rmse_interp"),
    )
    _log_if_positive(ax_c, stats[stats["metric"] == "rmse_interp"]["mean"])
    ax_c.set_ylabel("interpolation RMSE")
    ax_c.set_title("Held-out points by sampling condition (mean +- std over seeds)")

    # D: regular-sampling ablation.
    reg = spec.regular_condition
    if reg is not None and reg in spec.conditions and reg != focus:
        pairs = [reg, focus]
        _grouped_bars(
            ax_d, pairs, spec.models,
            lambda g, m: _stat(stats, spec.system, g, m, "rmse_extrap"),
        )
        _log_if_positive(ax_d, stats[stats["metric"] == "rmse_extrap"]["mean"])
        ax_d.set_ylabel("extrapolation RMSE")
        ax_d.set_title(f"Regular grid vs {focus}: forecast horizon (mean +- std)")
    else:
        ax_d.text(0.5, 0.5, "no regular-sampling condition configured", ha="center",
                  va="center", transform=ax_d.transAxes)
        ax_d.set_axis_off()

    # E: error growth over the rollout.
    for m in spec.models:
        per_seed = []
        t_axis = None
        for s in spec.seeds:
            c = curves.get((focus, m, s))
            if c is None:
                continue
            e = np.asarray(c["error_growth_mean"])[: spec.error_points]
            smooth = moving_average(e, spec.smoothing)
            per_seed.append(np.log10(np.maximum(smooth, 1e-12)))
            t_axis = np.asarray(c["rollout_time"])[: spec.error_points]
        if not per_seed:
            continue
        length = min(len(p) for p in per_seed)
        arr = np.stack([p[:length] for p in per_seed])
        mean = arr.mean(axis=0)
        std = arr.std(axis=0, ddof=1) if len(arr) > 1 else np.zeros_like(mean)
        x = t_axis[:length]
        ax_e.plot(x, 10**mean, color=model_colour(m), lw=1.3)
        ax_e.fill_between(x, 10 ** (mean - std), 10 ** (mean + std),
                          color=model_colour(m), alpha=0.15, lw=0)
    ax_e.set_yscale("log")
    ax_e.set_xlabel("mean time since forecast start (averaged by step index)")
    ax_e.set_ylabel("normalised error")
    ax_e.set_title(f"Rollout error growth ({spec.smoothing}-pt smoothing, geometric mean +- std)")

    # F: distribution of per-sequence interpolation RMSE.
    data, labels, colours = [], [], []
    for m in spec.models:
        vals = [
            np.asarray(curves[(focus, m, s)]["rmse_interp_per_sequence"])
            for s in spec.seeds
            if (focus, m, s) in curves
        ]
        if not vals:
            continue
        v = np.concatenate(vals)
        data.append(v[np.isfinite(v)])
        labels.append(model_label(m))
        colours.append(model_colour(m))
    if data:
        box = ax_f.boxplot(data, patch_artist=True, showfliers=True, widths=0.6)
        for patch, col in zip(box["boxes"], colours, strict=True):
            patch.set_facecolor(col)
            patch.set_alpha(0.6)
        ax_f.set_xticks(range(1, len(labels) + 1))
        ax_f.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        _log_if_positive(ax_f, np.concatenate(data))
    ax_f.set_ylabel("interpolation RMSE per test sequence")
    ax_f.set_title(f"RMSE distribution ({focus}, all seeds)")

    for ax, letter in zip(axes.ravel(), "ABCDEF", strict=True):
        _panel_label(ax, letter)
    handles = [plt.Line2D([], [], color=TRUTH_COLOUR, lw=2, label="truth")] + [
        plt.Line2D([], [], color=model_colour(m), lw=3, label=model_label(m)) for m in spec.models
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(f"Irregular sampling on FitzHugh-Nagumo ({spec.system})", fontsize=14)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig
