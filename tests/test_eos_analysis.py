"""Edge-of-Stability analysis: spectra against a dense Hessian, summaries and statistics against
hand computations, the trajectory landscape against a per-point loop, figures and table render."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import functional_call

from otgap.analysis.eos import (
    config_statistics,
    hessian_spectra,
    late_median,
    run_summary,
    run_trajectory,
    seed_interval,
    set_flat_parameters,
    share_above,
    spectrum_snapshot_indices,
    wilson_interval,
)
from otgap.landscape import loss_at_point_loop, paper_plane, pca_plane, project
from otgap.landscape.grid import flat_parameters
from otgap.landscape.trajectory import trajectory_landscape
from otgap.models.classifiers import CLASSIFIERS
from otgap.train.eos import mse_loss


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return CLASSIFIERS["mlp"]((1, 2, 2), 3, hidden=(4,), activation="tanh").double()


def _data(n: int = 30):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 2, 2, generator=g, dtype=torch.float64), torch.randint(
        0, 3, (n,), generator=g
    )


def _dense_hessian(model, loss_fn, x, y) -> np.ndarray:
    names = [n for n, p in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def f(theta):
        parts = torch.split(theta, sizes)
        params = {n: t.reshape(s) for n, t, s in zip(names, parts, shapes, strict=True)}
        return loss_fn(functional_call(model, params, (x,)), y)

    theta = flat_parameters(model).clone()
    return torch.autograd.functional.hessian(f, theta).numpy()


def test_hessian_spectra_match_dense_hessian():
    model = _tiny_model()
    x, y = _data()
    n = flat_parameters(model).numel()
    rng = np.random.default_rng(0)
    vectors = flat_parameters(model).numpy() + 0.3 * rng.normal(size=(2, n))
    out = hessian_spectra(
        model, mse_loss, vectors, x, y, n_vectors=3, n_iter=n + 5, trace_matvecs=3 * n + 3,
        points=300, sigma=0.01,
    )  # fmt: skip
    for i, vec in enumerate(vectors):
        set_flat_parameters(model, vec)
        eig = np.linalg.eigvalsh(_dense_hessian(model, mse_loss, x, y))
        assert out["top_eigenvalue"][i] == pytest.approx(eig[-1], rel=1e-6)
        assert out["trace"][i] == pytest.approx(eig.sum(), rel=1e-6, abs=1e-8)
        w = out["weights"][i]
        assert w.sum() == pytest.approx(1.0)
        # With at least n Lanczos steps the quadrature nodes carrying weight are eigenvalues.
        nodes = out["nodes"][i][w > 1e-8]
        assert np.min(np.abs(nodes[:, None] - eig[None, :]), axis=1).max() < 1e-6 * eig[-1]
        area = np.trapezoid(out["density"][i], out["grid"])
        assert area == pytest.approx(1.0, abs=1e-3)


def test_spectrum_snapshot_indices_skip_non_finite_rows():
    steps = np.array([0, 10, 20, 30, 40, 50])
    snaps = np.zeros((6, 3))
    assert spectrum_snapshot_indices(steps, snaps) == [0, 2, 5]  # 25: tie, the earlier (20)
    snaps[5] = np.nan
    assert spectrum_snapshot_indices(steps, snaps) == [0, 2, 4]
    assert spectrum_snapshot_indices(steps[:2], snaps[:2]) == [0, 1]


def _history(sharp, threshold=10.0, diverged_at=None):
    steps = np.arange(len(sharp)) * 100
    frame = pd.DataFrame(
        {
            "step": steps,
            "epoch": steps.astype(float),
            "train_loss": np.linspace(1, 0.1, len(sharp)),
            "train_acc": np.linspace(0.1, 0.9, len(sharp)),
            "test_loss": np.linspace(1, 0.2, len(sharp)),
            "test_acc": np.linspace(0.1, 0.8, len(sharp)),
            "sharpness": sharp,
            "sharpness_raw": sharp,
            "threshold": threshold,
            "grad_norm": 1.0,
            "diverged": False,
        }
    )
    if diverged_at is not None:
        frame.loc[diverged_at, "diverged"] = True
        frame.loc[diverged_at, ["train_loss", "test_acc", "sharpness"]] = np.nan
    return frame


def test_run_summary_by_hand():
    keys = dict(dataset="digits", model="mlp", optimizer="gd", lr="0.2", loss="mse", seed=3)
    sharp = [2.0, np.nan, 8.0, 11.0, np.nan, 9.5, 10.5, 10.2, 12.0]
    traj = run_trajectory(keys, _history(sharp), 10.0)
    assert list(traj.columns[:6]) == ["dataset", "model", "optimizer", "lr", "loss", "seed"]
    assert traj["lr"].iloc[0] == 0.2
    info = {"steps": 800, "steps_done": 800, "diverged": False, "diverged_step": None}
    s = run_summary(traj, info)
    measured = np.array([2.0, 8.0, 11.0, 9.5, 10.5, 10.2, 12.0]) / 10
    assert s["max_ratio"] == pytest.approx(1.2)
    assert s["final_ratio"] == pytest.approx(1.2)
    assert s["frac_above"] == pytest.approx(np.mean(measured > 1))
    assert s["first_step_above"] == 300
    # late phase = the last third of the 7 measurements (ceil(7/3) = 3): 1.05, 1.02, 1.2
    assert s["late_ratio_median"] == pytest.approx(1.05)
    assert "edge_ratio_median" not in s  # one late-phase definition only
    assert s["n_above"] == 4 and s["n_measurements"] == 7
    assert s["steps_to_edge"] == 300  # first ratio >= 0.9: 1.1 at step 300
    assert np.isnan(s["bs_late_ratio_median"]) and s["bs_n_measurements"] == 0
    assert s["loss_ratio"] == pytest.approx(0.1)  # train loss 1 -> 0.1
    assert s["final_test_acc"] == pytest.approx(0.8)
    assert not s["diverged"] and s["diverged_step"] == -1


def test_preconditioned_step0_is_left_out():
    """A synthetic adaptive run whose step-0 ratio is huge (preconditioner (1 - beta1)|g|): the
    late phase, max, share above and steps-to-edge come from the later measurements only."""
    keys = dict(dataset="d", model="m", optimizer="adam", lr="0.001", loss="mse", seed=0)
    sharp = [5.0e4, 0.5, 0.7, 0.8, 0.9, 1.1, 0.95]  # threshold 1: ratios equal sharpness
    traj = run_trajectory(keys, _history(sharp, 1.0), 1.0)
    s = run_summary(traj, {"steps": 600, "preconditioned": True})
    assert s["step0_ratio"] == pytest.approx(5.0e4)
    assert s["max_ratio"] == pytest.approx(1.1)
    assert s["n_measurements"] == 6 and s["n_above"] == 1
    assert s["frac_above"] == pytest.approx(1 / 6)
    # last third of the 6 later measurements (ceil(6/3) = 2): 1.1, 0.95
    assert s["late_ratio_median"] == pytest.approx(1.025)
    assert late_median(traj, preconditioned=True) == pytest.approx(1.025)
    assert s["steps_to_edge"] == 400
    # the same history read as not preconditioned keeps step 0 (the old, misleading numbers)
    plain = run_summary(traj, {"steps": 600, "preconditioned": False})
    assert plain["max_ratio"] == pytest.approx(5.0e4) and plain["n_above"] == 2
    assert plain["steps_to_edge"] == 0


def test_batch_sharpness_ratio_summary():
    keys = dict(dataset="d", model="m", optimizer="sgd", lr="0.1", loss="mse", seed=0)
    hist = _history([2.0, 4.0, 6.0, 8.0, 9.0, 10.0], 20.0)
    hist["batch_sharpness"] = [3.0, 10.0, 17.0, 19.0, 22.0, 20.4]
    hist.loc[1, "batch_sharpness"] = np.nan  # not measured at that row
    traj = run_trajectory(keys, hist, 20.0)
    assert traj["bs_ratio"].iloc[4] == pytest.approx(1.1)
    s = run_summary(traj, {"steps": 500})
    # finite: 0.15, 0.85, 0.95, 1.1, 1.02; last third (2): 1.1, 1.02
    assert s["bs_late_ratio_median"] == pytest.approx(1.06)
    assert s["bs_n_measurements"] == 5 and s["bs_n_above"] == 2
    assert s["bs_steps_to_edge"] == 300
    assert s["late_ratio_median"] == pytest.approx(0.475)  # lambda_1: 9.0, 10.0 over 20


def test_wilson_interval_against_scipy():
    from scipy.stats import binomtest

    for k, n in ((0, 10), (3, 10), (10, 10), (17, 40), (1, 1)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    share = share_above([0.5, 1.2, np.nan, 1.0, 3.0])  # 1.0 is not above
    assert (share["k"], share["n"]) == (2, 4) and share["share"] == 0.5
    assert np.isnan(wilson_interval(0, 0)[0])


def test_seed_interval_needs_three_seeds():
    mean, lo, hi, n = seed_interval([1.0, 2.0])
    assert mean == 1.5 and n == 2 and np.isnan(lo) and np.isnan(hi)
    mean, lo, hi, n = seed_interval([1.0, 2.0, 3.0, np.nan])
    assert n == 3 and mean == 2.0
    assert hi - mean == pytest.approx(4.302653 / np.sqrt(3))  # t(0.975, 2) * sd 1 / sqrt(3)


def test_run_summary_diverged_run():
    keys = dict(dataset="d", model="m", optimizer="sgd", lr="1", loss="ce", seed=0)
    traj = run_trajectory(keys, _history([1.0, 5.0, 30.0, 40.0], 2.0, diverged_at=3), 2.0)
    s = run_summary(
        traj, {"steps": 1000, "steps_done": 300, "diverged": True, "diverged_step": 300}
    )
    assert s["diverged"] and s["diverged_step"] == 300
    assert s["final_test_acc"] == pytest.approx(np.linspace(0.1, 0.8, 4)[2])
    assert s["max_ratio"] == pytest.approx(15.0)


def _summary_frame():
    rows = []
    rng = np.random.default_rng(0)
    for opt, lr, thr in (("gd", 0.2, 10.0), ("adam", 0.001, 38000.0)):
        for seed in range(3):
            rows.append(
                dict(
                    dataset="digits",
                    model="mlp",
                    optimizer=opt,
                    lr=lr,
                    loss="mse",
                    seed=seed,
                    threshold=thr,
                    final_test_acc=rng.uniform(0.8, 0.9),
                    final_train_loss=rng.uniform(0.01, 0.1),
                    max_ratio=rng.uniform(1, 1.3),
                    final_ratio=rng.uniform(0.9, 1.1),
                    late_ratio_median=1.0,
                    frac_above=rng.uniform(0, 1),
                    n_above=1,
                    n_measurements=10,
                    diverged=(opt == "adam" and seed == 2),
                    steps=1500,
                )  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_config_statistics_against_numpy():
    summary = _summary_frame()
    stats = config_statistics(summary)
    gd = stats[stats["optimizer"] == "gd"].iloc[0]
    ref = summary[summary["optimizer"] == "gd"]["final_test_acc"].to_numpy()
    assert gd["final_test_acc_mean"] == pytest.approx(ref.mean())
    assert gd["final_test_acc_std"] == pytest.approx(ref.std(ddof=1))
    assert gd["n_seeds"] == 3 and gd["n_diverged"] == 0
    assert stats[stats["optimizer"] == "adam"].iloc[0]["n_diverged"] == 1


def test_summary_table_is_booktabs():
    from otgap.tables.eos import summary_table

    summary = _summary_frame()
    tex = summary_table(summary)
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", "1/3", "0/3"):
        assert token in tex
    assert tex.count(r"\\") == 1 + 1 + 2  # header, group line, two configurations
    gd = summary[summary["optimizer"] == "gd"]["final_test_acc"] * 100
    row = next(line for line in tex.splitlines() if line.startswith("gd &"))
    assert f"${gd.mean():.1f} \\pm {gd.std(ddof=1):.1f}$" in row
    # n column; late ratio 1.0 for all 3 seeds: an interval of zero width; pooled share with
    # its Wilson interval (k, n summed over seeds), here 3 of 30 above
    cells = [c.strip() for c in row.rstrip(" \\").split("&")]
    assert cells[3] == "3" and cells[4] == "1500"
    assert cells[6] == r"$1.00\;[1.00, 1.00]$"
    lo, hi = wilson_interval(3, 30)
    assert cells[7] == f"$10\\;[{100 * lo:.0f}, {100 * hi:.0f}]$"
    assert cells[8] == cells[9] == "--"  # no batch sharpness measured
    assert "38000" in tex  # Adam's threshold written out, not as 3.8e+04


def test_mean_ci_and_median_seed():
    from otgap.plots.eos import mean_ci, median_final_loss_seed

    frame = pd.DataFrame({"step": [0, 0, 0, 1, 1], "v": [1.0, 2.0, 3.0, 4.0, np.inf]})
    ci = mean_ci(frame, "v")
    assert ci["mean"].tolist() == [2.0, 4.0]
    assert ci["hi"].iloc[0] - ci["mean"].iloc[0] == pytest.approx(
        4.302653 * 1.0 / np.sqrt(3)
    )  # t(0.975, 2)
    # one value: no interval at all (fewer than 3 seeds never get one)
    assert np.isnan(ci["hi"].iloc[1]) and np.isnan(ci["lo"].iloc[1])
    # log=True: geometric mean and an interval of the log, never below zero
    g = mean_ci(frame, "v", log=True)
    assert g["mean"].iloc[0] == pytest.approx(6 ** (1 / 3))
    sd = np.std(np.log([1.0, 2.0, 3.0]), ddof=1)
    assert g["lo"].iloc[0] == pytest.approx(6 ** (1 / 3) * np.exp(-4.302653 * sd / np.sqrt(3)))
    s = pd.DataFrame(
        {
            "seed": [0, 1, 2, 3, 4],
            "final_train_loss": [0.5, 0.1, 0.3, 0.2, 9.0],
            "diverged": [False, False, False, False, True],
        }  # fmt: skip
    )
    assert median_final_loss_seed(s) == 3  # sorted 0.1, 0.2, 0.3, 0.5 -> lower median 0.2


def test_trajectory_landscape_consistent_with_loop():
    model = _tiny_model()
    x, y = _data(20)
    n = flat_parameters(model).numel()
    rng = np.random.default_rng(3)
    snaps = flat_parameters(model).numpy() + np.cumsum(0.2 * rng.normal(size=(6, n)), axis=0)
    snaps[0] = flat_parameters(model).numpy()
    snaps_bad = np.concatenate([snaps, np.full((1, n), np.nan)])
    out = trajectory_landscape(model, mse_loss, snaps_bad, x, y, grid=5, padding=0.4, chunk_size=4)
    assert out["snapshot_used"].tolist() == [True] * 6 + [False]
    assert out["paper_loss"].shape == (5, 5) and out["pca_loss"].shape == (5, 5)
    assert np.isnan(out["paper_coords"][-1]).all()
    for kind, make in (("paper", paper_plane), ("pca", pca_plane)):
        plane = make(snaps)
        coords, _ = project(plane, snaps)
        np.testing.assert_allclose(out[f"{kind}_coords"][:6], coords, atol=1e-10)
        ref = [loss_at_point_loop(model, mse_loss, plane.point(*c), x, y) for c in coords]
        np.testing.assert_allclose(out[f"{kind}_path_loss"][:6], ref, rtol=1e-9)
        a, b = out[f"{kind}_alphas"], out[f"{kind}_betas"]
        corner = loss_at_point_loop(model, mse_loss, plane.point(a[-1], b[0]), x, y)
        assert out[f"{kind}_loss"][0, -1] == pytest.approx(corner, rel=1e-9)
    ref_true = [loss_at_point_loop(model, mse_loss, s, x, y) for s in snaps]
    np.testing.assert_allclose(out["trajectory_loss"][:6], ref_true, rtol=1e-9)
    # the paper plane starts at the origin; its residuals are zero for the first and last rows
    assert np.allclose(out["paper_coords"][0], 0) and out["paper_residual"][5] < 1e-9


def test_figures_render(tmp_path):
    import matplotlib.pyplot as plt

    from otgap.plots.eos import comparison_figure, figure3, multiseed_figure, spectrum_figure
    from otgap.plots.style import apply_style, save_figure

    apply_style()
    model = _tiny_model()
    x, y = _data(20)
    n = flat_parameters(model).numel()
    rng = np.random.default_rng(4)
    snaps = flat_parameters(model).numpy() + np.cumsum(0.2 * rng.normal(size=(5, n)), axis=0)
    land = trajectory_landscape(model, mse_loss, snaps, x, y, grid=6)
    keys = dict(dataset="digits", model="mlp", optimizer="gd", lr="0.2", loss="mse")
    frames, rows = [], []
    for seed in range(3):
        hist = _history([2.0, 8.0, 11.0, 9.5, 10.4], 10.0, diverged_at=4 if seed == 2 else None)
        traj = run_trajectory({**keys, "seed": seed}, hist, 10.0)
        frames.append(traj)
        rows.append(run_summary(traj, {"steps": 400, "diverged": seed == 2}))
    traj, summary = pd.concat(frames, ignore_index=True), pd.DataFrame(rows)
    spec = hessian_spectra(
        model, mse_loss, snaps[[0, 2, 4]], x, y, n_vectors=2, n_iter=10, trace_matvecs=9,
        points=50, sigma=0.02,
    )  # fmt: skip
    spec.update(steps=np.array([0, 200, 400]), threshold=np.asarray(10.0),
                preconditioned=np.asarray(False))  # fmt: skip
    figs = {
        "f3": figure3(traj[traj["seed"] == 0], land, False),
        "ms": multiseed_figure(traj, summary, land, 1, False),
        "cmp": comparison_figure(traj, summary),
        "spec": spectrum_figure([("gd lr=0.2", spec), ("gd lr=0.2 again", spec)]),
    }
    for name, fig in figs.items():
        save_figure(fig, tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")
        plt.close(fig)
        assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_diverged_run_gives_nan_results_not_errors(tmp_path):
    import matplotlib.pyplot as plt

    from otgap.plots.eos import multiseed_figure, spectrum_figure

    model = _tiny_model()
    x, y = _data(10)
    theta = flat_parameters(model).numpy()
    # Only the initial snapshot is finite: no plane, but a landscape file of NaNs.
    snaps = np.stack([theta, np.full_like(theta, np.inf)])
    land = trajectory_landscape(model, mse_loss, snaps, x, y, grid=4)
    assert land["paper_loss"].shape == (4, 4) and np.isnan(land["paper_loss"]).all()
    assert land["snapshot_used"].tolist() == [True, False]
    # Weights so large that the loss overflows: NaN spectrum for that snapshot only.
    spec = hessian_spectra(
        model, mse_loss, np.stack([theta, theta * 1e200]), x, y, n_vectors=1, n_iter=5,
        trace_matvecs=6, points=20, sigma=0.05,
    )  # fmt: skip
    assert np.isfinite(spec["top_eigenvalue"][0]) and np.isnan(spec["top_eigenvalue"][1])
    assert np.isfinite(spec["density"][0]).all() and np.isnan(spec["density"][1]).all()
    spec.update(steps=np.array([0, 5]), threshold=np.asarray(2.0), preconditioned=np.asarray(False))
    keys = dict(dataset="d", model="m", optimizer="gd", lr="1", loss="mse", seed=0)
    traj = run_trajectory(keys, _history([1.0, 3.0], 2.0, diverged_at=1), 2.0)
    summary = pd.DataFrame([run_summary(traj, {"steps": 100, "diverged": True})])
    for fig in (multiseed_figure(traj, summary, land, 0, False), spectrum_figure([("d", spec)])):
        fig.savefig(tmp_path / "f.png")
        plt.close(fig)


def _landau1_with_bn_stats(vec, x):
    """landau1 at ``vec`` in eval mode, its BatchNorm statistics set by hand from ``x``."""
    torch.manual_seed(0)
    model = CLASSIFIERS["landau1"]((1, 2, 2), 3).double()
    set_flat_parameters(model, vec)
    with torch.no_grad():
        phi = model.llayer1(x.flatten(1))
        model.bn1.running_mean.copy_(phi.mean(0))
        model.bn1.running_var.copy_(phi.var(0, unbiased=True))
    return model.eval()


def test_batchnorm_model_spectrum_and_landscape_in_eval_mode():
    """landau1 holds a BatchNorm: the spectrum stage measures the eval-mode Hessian with the
    inputs' statistics at each snapshot (dense reference), and the landscape runs, with the last
    snapshot's statistics, giving the eval-mode loss there."""
    from otgap.analysis.eos import batchnorm_at_last_snapshot

    torch.manual_seed(0)
    model = CLASSIFIERS["landau1"]((1, 2, 2), 3).double()
    x, y = _data(16)
    x = x.abs()  # the Landau nets' inputs are in [0, 1]-like ranges
    n = flat_parameters(model).numel()
    rng = np.random.default_rng(5)
    vectors = flat_parameters(model).numpy() + 0.2 * rng.normal(size=(2, n))
    out = hessian_spectra(
        model, mse_loss, vectors, x, y, n_vectors=2, n_iter=n + 5, trace_matvecs=3 * n + 3,
        points=100, sigma=0.01,
    )  # fmt: skip
    for i, vec in enumerate(vectors):
        ref = _landau1_with_bn_stats(vec, x)
        eig = np.linalg.eigvalsh(_dense_hessian(ref, mse_loss, x, y))
        assert out["top_eigenvalue"][i] == pytest.approx(eig[-1], rel=1e-6)
        assert out["trace"][i] == pytest.approx(eig.sum(), rel=1e-6, abs=1e-8)
    snaps = np.concatenate([vectors, np.full((1, n), np.nan)])
    note = batchnorm_at_last_snapshot(model, snaps, x)
    assert "snapshot 1" in note
    land = trajectory_landscape(model, mse_loss, snaps, x, y, grid=4)
    ref = _landau1_with_bn_stats(vectors[1], x)
    expected = float(mse_loss(ref(x), y).detach())
    assert land["trajectory_loss"][1] == pytest.approx(expected, rel=1e-9)
    assert batchnorm_at_last_snapshot(_tiny_model(), snaps, x) == ""
