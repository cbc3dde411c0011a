"""EoS figures from synthetic histories: a preconditioned run's huge step-0 ratio sets neither the
y-limits nor the "max"; no interval from fewer than 3 seeds; bands of positive quantities stay
above zero; panel letters are unique."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from otgap.analysis.eos import run_summary, run_trajectory
from otgap.plots.eos import comparison_figure, figure3, multiseed_figure

STEP0 = 5.0e4  # Adam's preconditioner at step 0 is (1 - beta1)|g|: an absurd ratio


def _history(seed: int, n: int = 12, step0: float | None = None, batch: bool = False):
    rng = np.random.default_rng(seed)
    steps = np.arange(n) * 50
    ratio = np.clip(0.3 + 0.7 * (1 - np.exp(-steps / 150)) + 0.02 * rng.normal(size=n), 0.05, None)
    if step0 is not None:
        ratio[0] = step0
    frame = pd.DataFrame(
        {
            "step": steps,
            "epoch": steps / 10,
            "train_loss": np.exp(-steps / 300) + 0.01 * (seed + 1),
            "train_acc": 0.9,
            "test_loss": np.exp(-steps / 400) + 0.02,
            "test_acc": 0.85,
            "sharpness": 10.0 * ratio,
            "sharpness_raw": 10.0 * ratio,
            "threshold": 10.0,
            "grad_norm": 1.0,
            "diverged": False,
        }
    )
    if batch:
        frame["batch_sharpness"] = 10.0 * (1.1 * ratio + 0.01 * rng.normal(size=n))
    return frame


def _runs(optimizer: str, seeds, preconditioned: bool, batch: bool = False):
    keys = dict(dataset="digits", model="mlp", optimizer=optimizer, lr="0.1", loss="mse")
    frames, rows = [], []
    for seed in seeds:
        hist = _history(seed, step0=STEP0 if preconditioned else None, batch=batch)
        traj = run_trajectory({**keys, "seed": seed}, hist, 10.0)
        frames.append(traj)
        rows.append(run_summary(traj, {"steps": 550, "preconditioned": preconditioned}))
    return pd.concat(frames, ignore_index=True), pd.DataFrame(rows)


def _land():
    a = np.linspace(-1, 1, 5)
    aa, bb = np.meshgrid(a, a)
    coords = np.array([[0.0, 0.0], [0.3, 0.1], [0.5, 0.4]])
    return {
        "paper_alphas": a,
        "paper_betas": a,
        "paper_loss": 1.0 + aa**2 + bb**2,
        "paper_coords": coords,
        "paper_path_loss": np.array([2.0, 1.5, 1.1]),
        "paper_explained_variance": np.array([0.8, 0.1]),
        "pca_explained_variance": np.array([0.85, 0.1]),
    }


def _bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def _ratio_axes(fig, prefix: str):
    return next(ax for ax in fig.axes if ax.get_title().startswith(prefix))


def test_summary_ignores_step0_for_preconditioned():
    _, summary = _runs("adam", [0, 1], preconditioned=True)
    assert (summary["step0_ratio"] == STEP0).all()
    assert (summary["max_ratio"] < 2).all()


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_comparison_figure_limits_and_bands(n_seeds):
    import matplotlib.pyplot as plt

    traj, summary = _runs("adam", range(n_seeds), preconditioned=True)
    t2, s2 = _runs("sgd", range(n_seeds), preconditioned=False, batch=True)
    fig = comparison_figure(pd.concat([traj, t2]), pd.concat([summary, s2]))
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "log"
    post = pd.concat([traj[traj["step"] > 0]["ratio"], t2["ratio"], t2["bs_ratio"]])
    assert hi <= 1.5 * max(post.max(), 1.0) + 1e-9 and hi < STEP0  # set by post-warm-up data
    assert 0 < lo <= post.min()
    bands = _bands(ax)
    if n_seeds < 3:
        assert bands == []  # no interval from fewer than 3 seeds
    else:
        assert len(bands) == 3  # adam lambda_1; sgd lambda_1 and batch sharpness
        for band in bands:
            for path in band.get_paths():
                assert (path.vertices[:, 1] > 0).all()
    plt.close(fig)


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_multiseed_figure(n_seeds):
    import matplotlib.pyplot as plt

    traj, summary = _runs("adam", range(n_seeds), preconditioned=True)
    fig = multiseed_figure(traj, summary, _land(), 0, preconditioned=True)
    letters = [m.group(1) for ax in fig.axes if (m := re.match(r"\((\w)\)", ax.get_title()))]
    assert sorted(letters) == list("abcde")  # unique, in order
    ax = _ratio_axes(fig, "(b)")
    assert ax.get_yscale() == "log" and ax.get_ylim()[1] < 10
    loss_ax = _ratio_axes(fig, "(a)")
    for a in (ax, loss_ax):
        bands = _bands(a)
        assert (bands == []) if n_seeds < 3 else len(bands) >= 1
        for band in bands:
            for path in band.get_paths():
                assert (path.vertices[:, 1] > 0).all()
    text = _ratio_axes(fig, "(e)").texts[0].get_text()
    assert "+-" not in text and "l1/thr" not in text and "\\lambda_1" in text
    assert "step-0 ratio (not used)" in text
    plt.close(fig)


def test_figure3_step0_not_on_axes():
    import matplotlib.pyplot as plt

    traj, _ = _runs("adam", [0], preconditioned=True)
    fig = figure3(traj, _land(), preconditioned=True)
    ax = _ratio_axes(fig, "(d)")
    assert ax.get_yscale() == "log" and ax.get_ylim()[1] < 10
    plt.close(fig)
