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


def mean_ci(frame: pd.DataFrame, column: str, by: str = "step") -> pd.DataFrame:
    """Mean over seeds and the 95% interval of the mean at each ``by`` value (NaNs ignored)."""
    d = frame[[by, column]].replace([np.inf, -np.inf], np.nan).dropna()
    g = d.groupby(by)[column]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.size()}).reset_index()
    dof = np.maximum(out["n"].to_numpy() - 1, 1)
    quantile = np.where(out["n"] > 1, student_t.ppf(0.5 + CI_LEVEL / 2, dof), 0.0)
    half = quantile * out["std"].fillna(0.0) / np.sqrt(out["n"])
    out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    return out


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


def _shade_unstable(ax, threshold: float, label: str) -> None:
    ax.axhline(threshold, color="k", ls="--", lw=1.2, label=label)
    top = max(ax.get_ylim()[1], 1.15 * threshold)
    ax.axhspan(threshold, top, color="tab:red", alpha=0.08, label="unstable region")
    ax.set_ylim(top=top)


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
    s = run.dropna(subset=["sharpness"])
    ax.plot(s["step"], s["sharpness"], color="tab:green", marker=".", label="sharpness")
    threshold = float(run["threshold"].dropna().iloc[0])
    _shade_unstable(ax, threshold, threshold_label(threshold, float(row["lr"]), preconditioned))
    _mark_divergence(
        ax, s.assign(diverged=run["diverged"].any()) if len(s) else run, "sharpness", "tab:green"
    )
    ax.set_xlabel("step")
    ax.set_ylabel("lambda_1" + (" of P^-1 H" if preconditioned else " of H"))
    ax.set_title("(d) sharpness against the stability threshold")
    ax.legend(loc="lower right")
    group = f"{row['dataset']} / {row['model']} / {row['loss']}"
    fig.suptitle(f"{group} / {config_label(row)} / seed {row['seed']}")
    return fig


def _band(ax, stats: pd.DataFrame, color, label: str) -> None:
    ax.plot(stats["step"], stats["mean"], color=color, label=label)
    ax.fill_between(stats["step"], stats["lo"], stats["hi"], color=color, alpha=0.25, lw=0)


def multiseed_figure(
    traj: pd.DataFrame,
    summary: pd.DataFrame,
    land: Mapping[str, np.ndarray],
    median_seed: int,
    preconditioned: bool,
) -> Figure:
    """All seeds of one configuration.

    (a) loss and sharpness, mean and 95% CI, with the threshold and the unstable region shaded;
    (b) surface and (c) contours of the median-final-loss seed; (d) a text summary.
    """
    row = summary.iloc[0]
    n = summary["seed"].nunique()
    fig = plt.figure(figsize=(20, 11), constrained_layout=True)
    gs = fig.add_gridspec(2, 3, width_ratios=[1.2, 1.2, 0.8])
    ax = fig.add_subplot(gs[0, 0])
    _band(ax, mean_ci(traj, "train_loss"), "tab:blue", f"train loss (mean, 95% CI, n={n})")
    _band(ax, mean_ci(traj, "test_loss"), "tab:orange", "test loss")
    ax.set_yscale("log")
    diverged = _mark_divergence(ax, traj, "train_loss", "tab:red")
    ax.set_ylabel("loss")
    ax.set_title("(a) loss over seeds")
    ax.legend()
    ax = fig.add_subplot(gs[1, 0], sharex=ax)
    _band(ax, mean_ci(traj, "sharpness"), "tab:green", "sharpness (mean, 95% CI)")
    threshold = float(row["threshold"])
    _shade_unstable(ax, threshold, threshold_label(threshold, float(row["lr"]), preconditioned))
    _mark_divergence(ax, traj.dropna(subset=["sharpness"]), "sharpness", "tab:red")
    ax.set_xlabel("step")
    ax.set_ylabel("lambda_1")
    ax.set_title("(a) sharpness over seeds")
    ax.legend(loc="lower right")
    ax = fig.add_subplot(gs[0, 1], projection="3d")
    surface_panel(ax, land, "paper")
    ax.set_title(f"(b) loss surface, median-final-loss seed {median_seed}", fontsize="medium")
    ax = fig.add_subplot(gs[1, 1])
    contour_panel(ax, land, "paper", fig)
    ax.set_title(f"(c) contours, seed {median_seed}")
    ax = fig.add_subplot(gs[:, 2])
    ax.axis("off")
    ax.text(
        0.0,
        1.0,
        summary_text(summary, land, median_seed, diverged),
        va="top",
        family="monospace",
        fontsize=10,
        transform=ax.transAxes,
    )
    ax.set_title("(d) summary")
    fig.suptitle(f"{row['dataset']} / {row['model']} / {row['loss']} / {config_label(row)}")
    return fig


def _pm(values: pd.Series, scale: float = 1.0, digits: int = 3) -> str:
    v = values.astype(float).replace([np.inf, -np.inf], np.nan).dropna() * scale
    if not len(v):
        return "n/a"
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.{digits}g} +- {sd:.{digits}g}"


def summary_text(
    summary: pd.DataFrame, land: Mapping[str, np.ndarray], median_seed: int, diverged: Sequence[int]
) -> str:
    row = summary.iloc[0]
    ev = land["paper_explained_variance"]
    pca = land["pca_explained_variance"]
    grid = len(land["paper_alphas"])
    lines = [
        f"seeds            {', '.join(str(s) for s in sorted(summary['seed']))}",
        f"threshold        {float(row['threshold']):.4g}",
        f"final test acc   {_pm(summary['final_test_acc'], 100)} %",
        f"final train loss {_pm(summary['final_train_loss'])}",
        f"max  l1/thr      {_pm(summary['max_ratio'])}",
        f"final l1/thr     {_pm(summary['final_ratio'])}",
        f"late l1/thr      {_pm(summary['late_ratio_median'])}  (median, last 25%)",
        f"time above thr   {_pm(summary['frac_above'], 100)} % of measurements",
        f"diverged         {len(diverged)}/{len(summary)}"
        + (f" (seeds {', '.join(map(str, diverged))})" if diverged else ""),
        "",
        f"landscape (seed {median_seed}, {grid}x{grid} grid)",
        f"  paper plane var. d1 {100 * ev[0]:.1f}%, d2 {100 * ev[1]:.1f}%",
        f"  PCA plane   var. PC1 {100 * pca[0]:.1f}%, PC2 {100 * pca[1]:.1f}%",
        "",
        "mean +- std over seeds; bands in (a)",
        "are 95% t-intervals of the mean.",
    ]
    return "\n".join(lines)


def comparison_figure(traj: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Sharpness / threshold over training progress for every optimizer and lr of one group.

    Bands are over the seeds that did not diverge; a diverged run is drawn as a thin line that
    ends with a cross where it blew up, and the y-range is set by the runs that did not diverge
    (a blown-up sharpness would otherwise flatten every stable curve).
    """
    fig, ax = plt.subplots(figsize=(10, 6), constrained_layout=True)
    configs = summary[["optimizer", "lr"]].drop_duplicates().sort_values(["optimizer", "lr"])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    stable_top = []
    for i, (_, cfg) in enumerate(configs.iterrows()):
        color = colors[i % len(colors)]
        sel = traj[(traj["optimizer"] == cfg["optimizer"]) & (traj["lr"] == cfg["lr"])]
        rows = summary[(summary["optimizer"] == cfg["optimizer"]) & (summary["lr"] == cfg["lr"])]
        total = float(rows["steps"].max())
        d = sel.dropna(subset=["ratio"]).assign(progress=lambda f, t=total: f["step"] / t)
        d = d[np.isfinite(d["ratio"])]
        diverged_seeds = set(rows.loc[rows["diverged"], "seed"]) | set(
            sel.loc[sel["diverged"], "seed"]
        )
        stable = d[~d["seed"].isin(diverged_seeds)]
        n_div = len(diverged_seeds)
        label = f"{config_label(cfg)} (n={len(rows)}" + (f", {n_div} diverged)" if n_div else ")")
        if len(stable):
            stats = mean_ci(stable, "ratio", by="progress")
            ax.plot(stats["progress"], stats["mean"], color=color, label=label)
            ax.fill_between(
                stats["progress"], stats["lo"], stats["hi"], color=color, alpha=0.2, lw=0
            )
            stable_top.append(float(np.nanmax(stats["hi"])))
            label = None
        for _, run in d[d["seed"].isin(diverged_seeds)].groupby("seed"):
            ax.plot(run["progress"], run["ratio"], color=color, lw=0.8, alpha=0.7, label=label)
            ax.plot(run["progress"].iloc[-1], run["ratio"].iloc[-1], "x", color=color, ms=10, mew=2)
            label = None
    ax.axhline(1.0, color="k", ls="--", lw=1.2, label="stability threshold")
    top = max(1.1 * max(stable_top), 1.2) if stable_top else max(ax.get_ylim()[1], 1.2)
    ax.axhspan(1.0, top, color="tab:red", alpha=0.08)
    ax.set_ylim(bottom=0, top=top)
    ax.set_xlabel("training progress (step / total steps)")
    ax.set_ylabel("sharpness / threshold")
    row = summary.iloc[0]
    clipped = " (y-range from the runs that did not diverge)" if stable_top else ""
    ax.set_title(
        f"{row['dataset']} / {row['model']} / {row['loss']}: sharpness relative to each "
        f"optimizer's threshold (mean, 95% CI; x = diverged){clipped}"
    )
    ax.legend(fontsize="small")
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
