"""End-to-end checks of the Edge-of-Stability analysis on the shared quick run (results/quick)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

REQUIRED_COLUMNS = {
    "dataset", "model", "optimizer", "lr", "loss", "seed", "step", "train_loss", "train_acc",
    "test_acc", "sharpness", "threshold", "diverged",
}  # fmt: skip
RUN_KEYS = ["dataset", "model", "optimizer", "lr", "loss", "seed"]
# Late training = the last 25% of the steps; a run "had time" to reach the threshold when its
# sharpness first came within 10% of 2/lr before late training began.
LATE = 0.75
REACHED = 0.9
BAND = (0.8, 1.3)


@pytest.fixture(scope="module")
def agg(quick_run):
    root = quick_run / "aggregate" / "eos"
    return (
        pd.read_csv(root / "trajectories.csv"),
        pd.read_parquet(root / "trajectories.parquet"),
        pd.read_csv(root / "summary.csv"),
    )


def test_trajectories_table(agg):
    traj, parquet, summary = agg
    assert REQUIRED_COLUMNS <= set(traj.columns)
    assert len(parquet) == len(traj) and list(parquet.columns) == list(traj.columns)
    runs = traj[RUN_KEYS].drop_duplicates()
    assert len(runs) == len(summary) >= 2
    assert traj.groupby(RUN_KEYS)["step"].apply(lambda s: s.is_monotonic_increasing).all()
    assert summary["diverged"].dtype == bool


def test_figures_table_and_per_run_files_exist(quick_run, agg):
    _, _, summary = agg
    fig = quick_run / "figures" / "eos"
    for _, cfg in summary.drop_duplicates(
        ["dataset", "model", "loss", "optimizer", "lr"]
    ).iterrows():
        group = fig / f"dataset={cfg['dataset']}" / f"model={cfg['model']}" / f"loss={cfg['loss']}"
        for name in ("comparison", "spectrum"):
            for ext in ("pdf", "png"):
                assert (group / f"{name}.{ext}").stat().st_size > 0
        config_dirs = list(group.glob(f"optimizer={cfg['optimizer']}/lr=*"))
        assert config_dirs, f"no figures for {cfg['optimizer']} in {group}"
        for d in config_dirs:
            for name in ("figure3", "multiseed"):
                assert (d / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
                assert (d / f"{name}.png").stat().st_size > 10_000
    tex = (quick_run / "tables" / "eos" / "summary.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex
    # test accuracy as mean \pm std wherever a configuration has 2 or more seeds
    assert tex.count(r"\pm") >= int((summary.groupby(["optimizer", "lr"]).size() >= 2).sum())


def test_landscape_and_spectrum_files(quick_run):
    lands = sorted(quick_run.glob("eos/**/landscape.npz"))
    assert lands
    for path in lands:
        with np.load(path) as f:
            g = len(f["paper_alphas"])
            assert f["paper_loss"].shape == f["pca_loss"].shape == (g, g)
            s = len(f["steps"])
            assert f["paper_coords"].shape == (s, 2) and f["trajectory_loss"].shape == (s,)
            assert np.allclose(f["paper_coords"][0], 0.0, atol=1e-4)  # centred at the init
            assert np.isfinite(f["paper_loss"]).mean() > 0.5
        spec = path.with_name("spectrum.npz")
        if not spec.exists():  # spectra only for each configuration's first seed (figures)
            continue
        with np.load(spec) as f:
            assert f["density"].shape[0] == len(f["steps"]) <= 3
            np.testing.assert_allclose(f["weights"].sum(axis=1), 1.0, rtol=1e-6)


def test_gd_mse_sharpness_hovers_at_two_over_lr(agg):
    """Full-batch GD with MSE on digits: once sharpness has reached 2/lr it stays near it."""
    traj, _, _ = agg
    gd = traj[(traj["optimizer"] == "gd") & (traj["loss"] == "mse") & (traj["dataset"] == "digits")]
    if gd.empty:
        pytest.skip("the quick run has no full-batch GD + MSE run on digits")
    checked = []
    for key, run in gd.groupby(RUN_KEYS):
        run = run.dropna(subset=["sharpness"])
        if run["diverged"].any() or run.empty:
            continue
        total = run["step"].max()
        ratio = run["sharpness"] / (2.0 / run["lr"])
        reached = run.loc[ratio >= REACHED, "step"]
        if reached.empty or reached.iloc[0] > LATE * total:
            continue  # still sharpening when training ended
        late = ratio[run["step"] >= LATE * total]
        checked.append((key, float(late.median())))
        assert BAND[0] <= late.median() <= BAND[1], (
            f"{dict(zip(RUN_KEYS, key, strict=True))}: late sharpness / (2/lr) = {late.median():.3f}, "
            f"outside {BAND}"
        )
    assert checked, "no GD run reached 2/lr before late training; lengthen the quick GD runs"


# Full-batch heavy-ball and Adam at their own edge (Cohen et al. 2021, 2022): per seed, the
# median of sharpness / threshold over the last third of the measurements lies in EDGE_BAND, and
# training made progress (final loss under 10% of the initial one).
EDGE_BAND = (0.9, 1.2)
HAND_THRESHOLD = {  # beta = beta1 = 0.9
    "gd_momentum": lambda lr: (2 + 2 * 0.9) / lr,
    "adam_fb": lambda lr: (2 + 2 * 0.9) / ((1 - 0.9) * lr),
}


@pytest.mark.parametrize("optimizer", sorted(HAND_THRESHOLD))
def test_full_batch_momentum_and_adam_hover_at_their_thresholds(agg, optimizer):
    traj, _, summary = agg
    runs = traj[(traj["optimizer"] == optimizer) & (traj["loss"] == "mse")]
    assert not runs.empty, f"the quick run has no full-batch '{optimizer}' + MSE run"
    for key, run in runs.groupby(RUN_KEYS):
        where = dict(zip(RUN_KEYS, key, strict=True))
        assert not run["diverged"].any(), where
        lr = float(where["lr"])
        np.testing.assert_allclose(run["threshold"], HAND_THRESHOLD[optimizer](lr), rtol=1e-12)
        measured = run.dropna(subset=["sharpness"]).sort_values("step")
        if optimizer == "adam_fb":  # preconditioned: step 0 ((1 - beta1)|g|) is not measured on
            measured = measured[measured["step"] > 0]
        ratio = (measured["sharpness"] / HAND_THRESHOLD[optimizer](lr)).to_numpy()
        edge = float(np.median(ratio[len(ratio) - int(np.ceil(len(ratio) / 3)) :]))
        assert EDGE_BAND[0] <= edge <= EDGE_BAND[1], f"{where}: edge ratio {edge:.3f}"
        loss = run.sort_values("step")["train_loss"].to_numpy()
        assert loss[-1] < 0.1 * loss[0], f"{where}: loss {loss[0]:.4g} -> {loss[-1]:.4g}"
        row = summary[(summary[RUN_KEYS[:-1]] == pd.Series(where)[RUN_KEYS[:-1]]).all(axis=1)]
        row = row[row["seed"] == int(where["seed"])].iloc[0]
        assert row["late_ratio_median"] == pytest.approx(edge, rel=1e-9)
        assert row["loss_ratio"] == pytest.approx(loss[-1] / loss[0], rel=1e-9)


def test_full_batch_landscape_and_sharpness_use_the_training_subset(quick_run, agg):
    """A full-batch run's landscape is computed on the samples it descended: its final
    trajectory loss is the history's final train loss; run.json says what was measured on."""
    import json

    _, _, summary = agg
    checked = 0
    for _, r in summary[summary["full_batch"]].iterrows():
        tail = "/".join(f"{k}={r[k]}" for k in RUN_KEYS)
        run_dir = quick_run / "eos" / tail
        info = json.loads((run_dir / "run.json").read_text())
        assert info["eig_size"] == info["train_size"]
        assert sum(info["train_class_counts"]) == info["train_size"]
        assert min(info["train_class_counts"]) > 0
        hist = pd.read_csv(run_dir / "history.csv")
        with np.load(run_dir / "landscape.npz") as f:
            final = float(f["trajectory_loss"][-1])
        assert final == pytest.approx(float(hist["train_loss"].iloc[-1]), rel=1e-6)
        checked += 1
    assert checked
