"""Figure 2 of Appendix A.1: eight panels comparing the sequence models on FitzHugh-Nagumo.

A time series of one long rollout (t <= 200); B its phase portrait (first 800 points);
C interpolation RMSE by sampling condition (geometric mean over seeds with the back-transformed
95% t-interval of the log values); D the regular-sampling ablation (extrapolation RMSE, regular
grid against the focus condition, same statistics); E symmetric orbit distance of the rollouts to
the attractor, one point per seed and condition (does a model stay on the attractor?); F
distributions of per-sequence interpolation RMSE (test sequences of every seed); G relative period
error of the rollouts per seed and condition (does it keep the period?); H growth of the normalised
rollout error (smoothed per seed, geometric mean +- std over seeds), with the saturation level
sqrt(var_v + var_w) / mean scale that phase-decorrelated trajectories reach. The per-seed panels
(E, F, G) are drawn with seaborn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

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


def _geo(stats: pd.DataFrame, system, condition, model, metric) -> tuple[float, float, float]:
    """(geometric mean, CI low, CI high) over seeds from the statistics table."""
    row = stats[
        (stats["system"] == system)
        & (stats["condition"] == condition)
        & (stats["model"] == model)
        & (stats["metric"] == metric)
    ]
    if row.empty or "gmean" not in row:
        return np.nan, np.nan, np.nan
    return tuple(float(row[k].iloc[0]) for k in ("gmean", "gci_low", "gci_high"))


def _grouped_bars(ax, groups, models, value_fn) -> None:
    """Bars of ``value_fn(group, model) -> (value, low, high)`` with an asymmetric interval."""
    width = 0.8 / max(len(models), 1)
    for k, m in enumerate(models):
        xs, ys, lo, hi = [], [], [], []
        for g_i, g in enumerate(groups):
            value, low, high = value_fn(g, m)
            xs.append(g_i - 0.4 + (k + 0.5) * width)
            ys.append(value)
            ok = np.isfinite(value) and np.isfinite(low) and np.isfinite(high)
            lo.append(value - low if ok else 0.0)
            hi.append(high - value if ok else 0.0)
        ax.bar(
            xs,
            ys,
            width=width * 0.95,
            yerr=[lo, hi],
            color=model_colour(m),
            capsize=2,
            error_kw={"elinewidth": 0.8},
            label=model_label(m),
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
    fig, axes = plt.subplots(2, 4, figsize=(24, 10))
    (ax_a, ax_b, ax_c, ax_g), (ax_d, ax_e, ax_f, ax_h) = axes
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
        ax_c,
        spec.conditions,
        spec.models,
        lambda g, m: _geo(stats, spec.system, g, m, "rmse_interp"),
    )
    _log_if_positive(ax_c, stats[stats["metric"] == "rmse_interp"]["mean"])
    ax_c.set_ylabel("interpolation RMSE")
    ax_c.set_title("Held-out points by condition (geometric mean, 95% CI over seeds)")

    # D: regular-sampling ablation.
    reg = spec.regular_condition
    if reg is not None and reg in spec.conditions and reg != focus:
        pairs = [reg, focus]
        _grouped_bars(
            ax_d,
            pairs,
            spec.models,
            lambda g, m: _geo(stats, spec.system, g, m, "rmse_extrap"),
        )
        _log_if_positive(ax_d, stats[stats["metric"] == "rmse_extrap"]["mean"])
        ax_d.set_ylabel("extrapolation RMSE")
        ax_d.set_title(f"Regular grid vs {focus}: forecast horizon (geometric mean, 95% CI)")
    else:
        ax_d.text(
            0.5,
            0.5,
            "no regular-sampling condition configured",
            ha="center",
            va="center",
            transform=ax_d.transAxes,
        )
        ax_d.set_axis_off()

    # E and G: per-seed rollout metrics (seaborn strip plots, one point per seed and condition).
    rows = []
    for (cond, m, seed), c in curves.items():
        if m not in spec.models or cond not in spec.conditions:
            continue
        row = {"condition": cond, "model": model_label(m), "seed": seed}
        for key in ("orbit_distance", "period_error"):
            v = np.asarray(c.get(f"{key}_per_trajectory", [np.nan]), dtype=float)
            row[key] = float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else np.nan
        rows.append(row)
    per_seed = pd.DataFrame(rows)
    order = [model_label(m) for m in spec.models]
    for ax, key, title in (
        (ax_e, "orbit_distance", "Orbit distance to the attractor (per seed; lower is better)"),
        (ax_g, "period_error", "Relative period error of the rollouts (per seed)"),
    ):
        sub = per_seed.dropna(subset=[key]) if len(per_seed) else per_seed
        if len(sub):
            sns.stripplot(
                data=sub,
                x="model",
                y=key,
                hue="condition",
                order=order,
                hue_order=list(spec.conditions),
                dodge=True,
                ax=ax,
                size=5,
            )
            ax.tick_params(axis="x", labelrotation=30)
            _log_if_positive(ax, sub[key])
        else:
            ax.text(
                0.5,
                0.5,
                "no values (no oscillation)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.set_xlabel("")
        ax.set_ylabel(key.replace("_", " "))
        ax.set_title(title)

    # H: error growth over the rollout.
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
        ax_h.plot(x, 10**mean, color=model_colour(m), lw=1.3)
        ax_h.fill_between(
            x, 10 ** (mean - std), 10 ** (mean + std), color=model_colour(m), alpha=0.15, lw=0
        )
    sat = truth.get("attractor_std")
    if sat is not None:
        sd = np.asarray(sat, dtype=float)
        # normalised error of two independent points on the attractor: sqrt(2) * rms(1) = 1 per
        # component on average; draw the level sqrt(sum var) / sqrt(mean var)
        level = float(np.sqrt(np.sum(sd**2)) / np.sqrt(np.mean(sd**2)) / np.sqrt(2))
        ax_h.axhline(level, color="0.4", ls="--", lw=1)
        ax_h.text(
            0.01,
            level,
            " saturation (phase lost)",
            transform=ax_h.get_yaxis_transform(),
            va="bottom",
            fontsize=8,
            color="0.3",
        )
    ax_h.set_yscale("log")
    ax_h.set_xlabel("mean time since forecast start (averaged by step index)")
    ax_h.set_ylabel("normalised error")
    ax_h.set_title(f"Rollout error growth ({spec.smoothing}-pt smoothing, geometric mean +- std)")

    # F: distribution of per-sequence interpolation RMSE (seaborn box + strip).
    rows = []
    for m in spec.models:
        for s in spec.seeds:
            if (focus, m, s) not in curves:
                continue
            v = np.asarray(curves[(focus, m, s)]["rmse_interp_per_sequence"], dtype=float)
            rows += [{"model": model_label(m), "rmse": x} for x in v[np.isfinite(v)]]
    dist = pd.DataFrame(rows)
    if len(dist):
        labels = [model_label(m) for m in spec.models if model_label(m) in set(dist["model"])]
        palette = {model_label(m): model_colour(m) for m in spec.models}
        sns.boxplot(
            data=dist,
            x="model",
            y="rmse",
            order=labels,
            hue="model",
            palette=palette,
            ax=ax_f,
            showfliers=False,
            width=0.6,
            legend=False,
        )
        sns.stripplot(
            data=dist, x="model", y="rmse", order=labels, color="0.2", size=2, alpha=0.4, ax=ax_f
        )
        ax_f.tick_params(axis="x", labelrotation=30)
        ax_f.set_xlabel("")
        _log_if_positive(ax_f, dist["rmse"])
    ax_f.set_ylabel("interpolation RMSE per test sequence")
    ax_f.set_title(f"RMSE distribution ({focus}, all seeds)")

    for ax, letter in zip(
        (ax_a, ax_b, ax_c, ax_g, ax_d, ax_e, ax_f, ax_h), "ABCGDEFH", strict=True
    ):
        _panel_label(ax, letter)
    handles = [plt.Line2D([], [], color=TRUTH_COLOUR, lw=2, label="truth")] + [
        plt.Line2D([], [], color=model_colour(m), lw=3, label=model_label(m)) for m in spec.models
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(f"Irregular sampling on FitzHugh-Nagumo ({spec.system})", fontsize=14)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig
