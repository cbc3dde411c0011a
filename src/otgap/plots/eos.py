"""Figures of the Edge-of-Stability experiments (Appendix A.2).

Every function takes tidy data (the aggregate stage's trajectories/summary frames and the per-run
``landscape.npz``/``spectrum.npz`` contents as dicts) and returns a matplotlib Figure; saving is the
caller's business. Surfaces and contours show ``log10`` of the loss, because a padded grid spans
orders of magnitude between the valley and its walls; non-finite losses (a diverged run's far
field) are drawn at the largest finite value. Diverged runs are always drawn, ending in a cross.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.stats import t as student_t  # noqa: E402

CI_LEVEL = (
    0.95  # t-interval of the mean over seeds (the paper used 1.96 std/sqrt(n), too narrow for n=5)
)
FILLED_LEVELS = 25
LINE_LEVELS = 12
PALETTE_EOS = {"lambda": "#0072B2", "batch": "#D55E00"}  # Okabe-Ito blue / vermillion
PLANE_TITLES = {
    "paper": "paper plane (d1 = final - init, d2 = PC2)",
    "pca": "PCA plane (Li et al.)",
}


def config_label(row: Mapping[str, Any]) -> str:
    return f"{row['optimizer']} lr={row['lr']:g}"


def threshold_label(threshold: float, lr: float, preconditioned: bool) -> str:
    """Legend text of a stability threshold: '2/lr = 10' for plain GD/SGD, else its value."""
    if preconditioned:
        name = "threshold (preconditioned)"
    elif math.isclose(threshold, 2.0 / lr, rel_tol=1e-9):
        name = "2/lr"
    else:
        name = "stability threshold"
    return f"{name} = {threshold:.4g}"


def _log_loss(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    finite = np.isfinite(z) & (z > 0)
    if not finite.any():
        return np.zeros_like(z)
    out = np.full(z.shape, np.log10(z[finite].max()))
    out[finite] = np.log10(z[finite])
    return out


def mean_ci(frame: pd.DataFrame, column: str, by: str = "step", log: bool = False) -> pd.DataFrame:
    """Mean over seeds and the 95% t-interval of the mean at each ``by`` value (NaNs ignored).

    No interval (``lo``/``hi`` NaN) where fewer than 3 seeds have a value (t with one degree of
    freedom is 12.7: such a band says nothing; draw the seeds instead). ``log=True`` is for
    positive quantities (loss, sharpness ratios): mean and interval are those of the logarithm
    (a geometric mean with its interval), so a band never reaches zero or below; values that are
    not positive are ignored."""
    from otgap.analysis.eos import MIN_SEEDS_FOR_INTERVAL

    d = frame[[by, column]].replace([np.inf, -np.inf], np.nan).dropna()
    if log:
        d = d[d[column] > 0]
        d = d.assign(**{column: np.log(d[column].to_numpy(float))})
    g = d.groupby(by)[column]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.size()}).reset_index()
    n = out["n"].to_numpy()
    enough = n >= MIN_SEEDS_FOR_INTERVAL
    quantile = np.where(enough, student_t.ppf(0.5 + CI_LEVEL / 2, np.maximum(n - 1, 1)), np.nan)
    half = quantile * out["std"].fillna(0.0).to_numpy() / np.sqrt(n)
    out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    if log:
        for c in ("mean", "lo", "hi"):
            out[c] = np.exp(out[c])
    return out


def usable_ratios(frame: pd.DataFrame, column: str, preconditioned: bool) -> pd.DataFrame:
    """Rows of ``frame`` with a finite, positive ``column``; a preconditioned run's step 0 (its
    preconditioner is still (1 - beta1)|g|) is dropped, as in every table (otgap.analysis.eos)."""
    if column not in frame:
        return frame.iloc[0:0]
    v = pd.to_numeric(frame[column], errors="coerce")
    out = frame[np.isfinite(v) & (v > 0)]
    return out[out["step"] != 0] if preconditioned else out


RATIO_STYLES = {  # column -> (label, line style)
    "ratio": ("$\\lambda_1$ / threshold", "-"),
    "bs_ratio": ("batch sharpness / threshold", "--"),
}


def ratio_panel(ax, traj: pd.DataFrame, preconditioned: bool, color=None, by: str = "step"):
    """Sharpness/threshold (and batch sharpness/threshold where measured) of one configuration on
    a log axis: a geometric-mean band over 3 or more seeds, per-seed lines otherwise; the
    threshold (ratio 1) dashed and the region above it shaded, both in the legend. The y-range
    comes from the drawn (post-warm-up) data. Returns the (min, max) of the data drawn."""
    color = color or PALETTE_EOS["lambda"]
    lo_hi: list[float] = []
    for column, (label, style) in RATIO_STYLES.items():
        d = usable_ratios(traj, column, preconditioned)
        if d.empty:
            continue
        c = color if column == "ratio" else PALETTE_EOS["batch"]
        seeds = sorted(d["seed"].unique())
        lo_hi += [float(d[column].min()), float(d[column].max())]
        if len(seeds) >= 3:
            st = mean_ci(d, column, by=by, log=True)
            ax.plot(
                st[by], st["mean"], color=c, ls=style, label=f"{label} (geom. mean, n={len(seeds)})"
            )
            ax.fill_between(
                st[by],
                st["lo"],
                st["hi"],
                color=c,
                alpha=0.2,
                lw=0,
                label="95% interval of the mean",
            )
        else:
            for i, seed in enumerate(seeds):
                run = d[d["seed"] == seed].sort_values(by)
                ax.plot(
                    run[by],
                    run[column],
                    color=c,
                    ls=style,
                    lw=1.0,
                    marker=".",
                    ms=3,
                    alpha=0.9,
                    label=f"{label}, per seed (n={len(seeds)})" if i == 0 else None,
                )
    set_ratio_axis(ax, lo_hi)
    return (min(lo_hi), max(lo_hi)) if lo_hi else (np.nan, np.nan)


def set_ratio_axis(ax, values: Sequence[float]) -> None:
    """Log y-axis for ratios, limits from ``values`` and 1, the threshold and the region above."""
    v = [x for x in values if np.isfinite(x) and x > 0]
    lo = min([*v, 1.0]) / 1.5
    hi = max([*v, 1.0]) * 1.5
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", ls=":", lw=1.2, label="threshold (ratio 1)")
    ax.axhspan(1.0, hi, color="0.85", alpha=0.5, lw=0, label="above threshold")
    ax.set_ylim(lo, hi)
    ax.set_ylabel("ratio to the stability threshold")


def median_final_loss_seed(summary: pd.DataFrame) -> int:
    """Seed whose final training loss is the median (lower median for even counts).

    Runs that did not diverge are preferred; if all diverged, all are candidates.
    """
    cand = summary[~summary["diverged"]] if (~summary["diverged"]).any() else summary
    ordered = cand.assign(_l=cand["final_train_loss"].fillna(np.inf)).sort_values(["_l", "seed"])
    return int(ordered["seed"].iloc[(len(ordered) - 1) // 2])


def _no_landscape(ax, land: Mapping[str, np.ndarray], kind: str) -> bool:
    """Write a note instead of a plot when the run left no finite landscape (diverged at once)."""
    if np.isfinite(land[f"{kind}_loss"]).any():
        return False
    msg = "no landscape: fewer than two finite\nsnapshots (the run diverged)"
    if hasattr(ax, "text2D"):
        ax.text2D(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes)
    else:
        ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes)
    return True


def surface_panel(ax, land: Mapping[str, np.ndarray], kind: str = "paper") -> None:
    """3-D surface of log10 loss on a plane, with the projected trajectory drawn on it."""
    if _no_landscape(ax, land, kind):
        return
    a, b = land[f"{kind}_alphas"], land[f"{kind}_betas"]
    aa, bb = np.meshgrid(a, b)
    z = _log_loss(land[f"{kind}_loss"])
    ax.plot_surface(aa, bb, z, cmap="viridis", alpha=0.75, linewidth=0, antialiased=True)
    c, pz = land[f"{kind}_coords"], _log_loss(land[f"{kind}_path_loss"])
    ok = np.isfinite(c).all(axis=1)
    ax.plot(c[ok, 0], c[ok, 1], pz[ok], color="tab:red", marker="o", ms=2.5, lw=1.5, zorder=10)
    ax.scatter(*c[ok][0], pz[ok][0], color="white", edgecolor="k", s=30, zorder=11, label="start")
    ax.scatter(*c[ok][-1], pz[ok][-1], color="tab:red", edgecolor="k", s=40, zorder=11, label="end")
    ax.set_xlabel("alpha (d1)")
    ax.set_ylabel("beta (d2)")
    ax.set_zlabel("log10 loss")
    ax.view_init(elev=35, azim=-60)


def contour_panel(ax, land: Mapping[str, np.ndarray], kind: str = "paper", fig=None) -> None:
    """Filled contours (25 levels) and contour lines (12) of log10 loss with the trajectory."""
    if _no_landscape(ax, land, kind):
        return
    a, b = land[f"{kind}_alphas"], land[f"{kind}_betas"]
    z = _log_loss(land[f"{kind}_loss"])
    filled = ax.contourf(a, b, z, levels=FILLED_LEVELS, cmap="viridis")
    ax.contour(a, b, z, levels=LINE_LEVELS, colors="k", linewidths=0.5, alpha=0.6)
    c = land[f"{kind}_coords"]
    ok = np.isfinite(c).all(axis=1)
    ax.plot(c[ok, 0], c[ok, 1], color="tab:red", marker="o", ms=2.5, lw=1.5, label="trajectory")
    ax.plot(*c[ok][0], "o", color="white", mec="k", ms=7, label="start")
    ax.plot(*c[ok][-1], "*", color="tab:red", mec="k", ms=12, label="end")
    ev = land[f"{kind}_explained_variance"]
    ax.set_xlabel(f"alpha (d1, {100 * ev[0]:.1f}% var.)")
    ax.set_ylabel(f"beta (d2, {100 * ev[1]:.1f}% var.)")
    ax.legend(loc="best", fontsize="small")
    if fig is not None:
        fig.colorbar(filled, ax=ax, label="log10 loss")


def _mark_divergence(ax, frame: pd.DataFrame, column: str, color) -> list[int]:
    """Cross at each diverged run's last finite value of ``column``; returns those seeds."""
    seeds = []
    for seed, run in frame.groupby("seed"):
        if not run["diverged"].any():
            continue
        seeds.append(int(seed))
        ok = run[np.isfinite(run[column])]
        if len(ok):
            ax.plot(ok["step"].iloc[-1], ok[column].iloc[-1], "x", color=color, ms=10, mew=2)
        ax.axvline(run.loc[run["diverged"], "step"].iloc[0], color=color, ls=":", lw=1)
    return seeds


def figure3(run: pd.DataFrame, land: Mapping[str, np.ndarray], preconditioned: bool) -> Figure:
    """One seed: 3-D surface with the path, contours, loss, and sharpness against the threshold."""
    row = run.iloc[0]
    fig = plt.figure(figsize=(13, 10), constrained_layout=True)
    gs = fig.add_gridspec(2, 2)
    ax = fig.add_subplot(gs[0, 0], projection="3d")
    surface_panel(ax, land, "paper")
    ax.set_title("(a) loss surface, " + PLANE_TITLES["paper"], fontsize="medium")
    ax = fig.add_subplot(gs[0, 1])
    contour_panel(ax, land, "paper", fig)
    ax.set_title("(b) contours and trajectory")
    ax = fig.add_subplot(gs[1, 0])
    ok = run[np.isfinite(run["train_loss"])]
    ax.plot(ok["step"], ok["train_loss"], color="tab:blue", label="train loss")
    ax.plot(ok["step"], ok["test_loss"], color="tab:orange", alpha=0.8, label="test loss")
    ax.set_yscale("log")
    _mark_divergence(ax, run, "train_loss", "tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("(c) loss")
    ax.legend()
    ax = fig.add_subplot(gs[1, 1])
    threshold = float(run["threshold"].dropna().iloc[0])
    ratio_panel(ax, run, preconditioned)
    if run["diverged"].any():
        _mark_divergence(ax, usable_ratios(run, "ratio", preconditioned), "ratio", "k")
    ax.set_xlabel("step")
    what = "$P^{-1}H$" if preconditioned else "$H$"
    ax.set_title(
        f"(d) $\\lambda_1$ of {what} / "
        + threshold_label(threshold, float(row["lr"]), preconditioned)
        + (" (step 0 not shown)" if preconditioned else ""),
        fontsize="medium",
    )
    ax.legend(loc="lower right", fontsize="small")
    group = f"{row['dataset']} / {row['model']} / {row['loss']}"
    fig.suptitle(f"{group} / {config_label(row)} / seed {row['seed']}")
    return fig


def multiseed_figure(
    traj: pd.DataFrame,
    summary: pd.DataFrame,
    land: Mapping[str, np.ndarray],
    median_seed: int,
    preconditioned: bool,
) -> Figure:
    """All seeds of one configuration.

    (a) loss and (b) sharpness/threshold and batch sharpness/threshold (log axes): geometric
    mean and 95% interval over 3 or more seeds, per-seed lines with fewer; (c) surface and
    (d) contours of the median-final-loss seed; (e) the summary in typeset text.
    """
    row = summary.iloc[0]
    n = summary["seed"].nunique()
    fig = plt.figure(figsize=(20, 11), constrained_layout=True)
    gs = fig.add_gridspec(2, 3, width_ratios=[1.2, 1.2, 0.8])
    ax = fig.add_subplot(gs[0, 0])
    for column, color, label in (
        ("train_loss", PALETTE_EOS["lambda"], "train loss"),
        ("test_loss", PALETTE_EOS["batch"], "test loss"),
    ):
        if n >= 3:
            st = mean_ci(traj, column, log=True)
            ax.plot(st["step"], st["mean"], color=color, label=f"{label} (geom. mean, n={n})")
            ax.fill_between(
                st["step"],
                st["lo"],
                st["hi"],
                color=color,
                alpha=0.2,
                lw=0,
                label="95% interval of the mean",
            )
        else:
            for i, (_seed, run) in enumerate(traj.groupby("seed")):
                ok = run[np.isfinite(run[column]) & (run[column] > 0)]
                ax.plot(
                    ok["step"],
                    ok[column],
                    color=color,
                    lw=1.0,
                    label=f"{label}, per seed (n={n})" if i == 0 else None,
                )
    ax.set_yscale("log")
    diverged = _mark_divergence(ax, traj, "train_loss", "k")
    ax.set_ylabel("loss")
    ax.set_title("(a) loss over seeds")
    ax.legend(fontsize="small")
    ax = fig.add_subplot(gs[1, 0], sharex=ax)
    ratio_panel(ax, traj, preconditioned)
    ax.set_xlabel("step")
    ax.set_title(
        "(b) sharpness relative to "
        + threshold_label(float(row["threshold"]), float(row["lr"]), preconditioned)
        + (" (step 0 not shown)" if preconditioned else "")
    )
    ax.legend(loc="lower right", fontsize="small")
    ax = fig.add_subplot(gs[0, 1], projection="3d")
    surface_panel(ax, land, "paper")
    ax.set_title(f"(c) loss surface, median-final-loss seed {median_seed}", fontsize="medium")
    ax = fig.add_subplot(gs[1, 1])
    contour_panel(ax, land, "paper", fig)
    ax.set_title(f"(d) contours, seed {median_seed}")
    ax = fig.add_subplot(gs[:, 2])
    ax.axis("off")
    ax.text(
        0.0,
        1.0,
        summary_text(summary, land, median_seed, diverged),
        va="top",
        fontsize=10,
        linespacing=1.6,
        transform=ax.transAxes,
    )
    ax.set_title("(e) summary")
    fig.suptitle(f"{row['dataset']} / {row['model']} / {row['loss']} / {config_label(row)}")
    return fig


def _pm(values: pd.Series, scale: float = 1.0, digits: int = 3) -> str:
    """Mean $\\pm$ standard deviation over seeds, typeset (mathtext)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    v = v.replace([np.inf, -np.inf], np.nan).dropna() * scale
    if not len(v):
        return "n/a"
    if len(v) == 1:
        return f"${v.iloc[0]:.{digits}g}$ (one seed)"
    return f"${v.mean():.{digits}g} \\pm {v.std(ddof=1):.{digits}g}$"


def _late_ci(values: pd.Series) -> str:
    from otgap.analysis.eos import seed_interval

    mean, lo, hi, n = seed_interval(pd.to_numeric(values, errors="coerce"))
    if n == 0:
        return "n/a"
    if not np.isfinite(lo):
        return f"${mean:.3f}$ (n={n}, no interval)"
    return f"${mean:.3f}$ [${lo:.3f}$, ${hi:.3f}$]"


def _share_ci(summary: pd.DataFrame, prefix: str = "") -> str:
    from otgap.analysis.eos import wilson_interval

    k_col, n_col = f"{prefix}n_above", f"{prefix}n_measurements"
    if k_col not in summary or n_col not in summary:
        return "n/a"
    k = int(pd.to_numeric(summary[k_col], errors="coerce").fillna(0).sum())
    n = int(pd.to_numeric(summary[n_col], errors="coerce").fillna(0).sum())
    if n == 0:
        return "n/a"
    lo, hi = wilson_interval(k, n)
    return f"${100 * k / n:.3g}\\%$ [${100 * lo:.3g}$, ${100 * hi:.3g}$] of {n}"


def summary_text(
    summary: pd.DataFrame, land: Mapping[str, np.ndarray], median_seed: int, diverged: Sequence[int]
) -> str:
    """The multi-seed figure's summary panel, in typeset (mathtext) form."""
    row = summary.iloc[0]
    ev = land["paper_explained_variance"]
    pca = land["pca_explained_variance"]
    grid = len(land["paper_alphas"])
    pre = bool(row.get("preconditioned", False))
    lines = [
        f"seeds: {', '.join(str(s) for s in sorted(summary['seed']))}",
        f"threshold: ${float(row['threshold']):.4g}$",
        f"final test accuracy: {_pm(summary['final_test_acc'], 100)} %",
        f"final train loss: {_pm(summary['final_train_loss'])}",
        f"late $\\lambda_1$/threshold: {_late_ci(summary['late_ratio_median'])}",
        f"$\\lambda_1$ above threshold: {_share_ci(summary)}",
        f"max $\\lambda_1$/threshold: {_pm(summary['max_ratio'])}",
    ]
    if "bs_late_ratio_median" in summary and summary["bs_late_ratio_median"].notna().any():
        lines += [
            f"late batch sharpness/thr.: {_late_ci(summary['bs_late_ratio_median'])}",
            f"batch sharpness above: {_share_ci(summary, 'bs_')}",
        ]
    if pre and "step0_ratio" in summary:
        lines.append(f"step-0 ratio (not used): {_pm(summary['step0_ratio'])}")
    lines += [
        f"diverged: {len(diverged)}/{len(summary)}"
        + (f" (seeds {', '.join(map(str, diverged))})" if diverged else ""),
        "",
        f"landscape (seed {median_seed}, {grid}$\\times${grid} grid)",
        f"  paper plane: $d_1$ {100 * ev[0]:.1f}%, $d_2$ {100 * ev[1]:.1f}% of variance",
        f"  PCA plane: PC1 {100 * pca[0]:.1f}%, PC2 {100 * pca[1]:.1f}%",
        "",
        "late = mean over seeds of each seed's median",
        "over its last third of measurements, [95% t-",
        "interval] from 3+ seeds; above: pooled share",
        "[95% Wilson interval]" + ("; step 0 left out (preconditioner)" if pre else "") + ".",
    ]
    return "\n".join(lines)


def comparison_figure(traj: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Sharpness / threshold over training progress for every optimizer and lr of one group, on
    a log axis (every curve near ratio 1 stays visible).

    Full-batch lambda_1 solid, batch sharpness (SGD, heavy ball) dashed in the same colour.
    Geometric mean and 95% interval over 3 or more seeds that did not diverge; per-seed lines
    with fewer. A preconditioned run's step 0 is not drawn. A diverged run is a thin line ending
    in a cross (legend entry only when one diverged); the y-range comes from the runs that did
    not diverge (a blown-up sharpness would otherwise flatten every stable curve).
    """
    fig, ax = plt.subplots(figsize=(10, 6), constrained_layout=True)
    configs = summary[["optimizer", "lr"]].drop_duplicates().sort_values(["optimizer", "lr"])
    colors = [c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    drawn: list[float] = []
    any_diverged = False
    for i, (_, cfg) in enumerate(configs.iterrows()):
        color = colors[i % len(colors)]
        sel = traj[(traj["optimizer"] == cfg["optimizer"]) & (traj["lr"] == cfg["lr"])]
        rows = summary[(summary["optimizer"] == cfg["optimizer"]) & (summary["lr"] == cfg["lr"])]
        pre = bool(rows["preconditioned"].iloc[0]) if "preconditioned" in rows else False
        total = float(rows["steps"].max())
        diverged_seeds = set(rows.loc[rows["diverged"], "seed"]) | set(
            sel.loc[sel["diverged"], "seed"]
        )
        n_div = len(diverged_seeds)
        base = f"{config_label(cfg)} (n={len(rows)}" + (f", {n_div} diverged)" if n_div else ")")
        for column, (what, style) in RATIO_STYLES.items():
            d = usable_ratios(sel, column, pre).assign(progress=lambda f, t=total: f["step"] / t)
            if d.empty:
                continue
            stable = d[~d["seed"].isin(diverged_seeds)]
            seeds = sorted(stable["seed"].unique())
            label = f"{base}: {what}"
            if len(seeds) >= 3:
                st = mean_ci(stable, column, by="progress", log=True)
                ax.plot(st["progress"], st["mean"], color=color, ls=style, label=label)
                ax.fill_between(st["progress"], st["lo"], st["hi"], color=color, alpha=0.15, lw=0)
            else:
                for j, seed in enumerate(seeds):
                    run = stable[stable["seed"] == seed].sort_values("progress")
                    ax.plot(
                        run["progress"],
                        run[column],
                        color=color,
                        ls=style,
                        lw=1.0,
                        label=label + " (per seed)" if j == 0 else None,
                    )
            drawn += list(stable[column].astype(float))
            for _, run in d[d["seed"].isin(diverged_seeds)].groupby("seed"):
                any_diverged = True
                ax.plot(run["progress"], run[column], color=color, ls=style, lw=0.6, alpha=0.6)
                ax.plot(run["progress"].iloc[-1], run[column].iloc[-1], "x", color=color, ms=9)
    set_ratio_axis(ax, drawn)
    handles, labels = ax.get_legend_handles_labels()
    if any_diverged:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="x", ls="none", color="k"))
        labels.append("diverged run (last finite value)")
    ax.set_xlabel("training progress (step / total steps)")
    row = summary.iloc[0]
    ax.set_title(
        f"{row['dataset']} / {row['model']} / {row['loss']}: sharpness relative to each "
        "optimizer's threshold\n(band: 95% interval of the geometric mean over 3+ seeds; "
        "solid: $\\lambda_1$, dashed: batch sharpness)",
        fontsize="medium",
    )
    ax.legend(handles, labels, fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def spectrum_figure(spectra: Sequence[tuple[str, Mapping[str, np.ndarray]]]) -> Figure:
    """One panel per configuration: smoothed Hessian densities at start, middle and end."""
    n = len(spectra)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False, constrained_layout=True
    )
    names = ["start", "middle", "end"]
    for ax, (title, sp) in zip(axes.flat, spectra, strict=False):
        steps = sp["steps"]
        labels = names if len(steps) == 3 else [f"#{i}" for i in range(len(steps))]
        for i, step in enumerate(steps):
            dens = np.maximum(sp["density"][i], 1e-12)
            ax.semilogy(
                sp["grid"],
                dens,
                label=(
                    f"{labels[i]} (step {int(step)}): l1={sp['top_eigenvalue'][i]:.3g}, "
                    f"tr={sp['trace'][i]:.3g}"
                ),
            )
        if not bool(sp["preconditioned"]):  # a preconditioned threshold is not about H itself
            thr = float(sp["threshold"])
            ax.axvline(thr, color="k", ls="--", lw=1, label=f"stability threshold = {thr:.4g}")
        peak = np.nanmax(sp["density"]) if np.isfinite(sp["density"]).any() else np.nan
        if np.isfinite(peak) and peak > 0:
            ax.set_ylim(bottom=1e-6 * float(peak))
        ax.set_xlabel("Hessian eigenvalue")
        ax.set_ylabel("density (Gaussian-smoothed SLQ)")
        ax.set_title(title)
        ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig
