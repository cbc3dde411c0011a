"""The BiostatisV6 table: representation metrics, the seed-paired comparison and the LaTeX, against
numbers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from otgap.tables.biostatis import (
    SEED_CLAIMS,
    compare,
    last_linear_weight,
    latex_table,
    representation_metrics,
    run_record,
    with_claims,
)


def test_representation_metrics_by_hand():
    # singular values 3, 2, 1, 1, 1, 1 (a rotated diagonal matrix: SVD does the work)
    q1, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    q2, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    d = np.zeros((6, 8))
    d[np.arange(6), np.arange(6)] = [3, 2, 1, 1, 1, 1]
    got = representation_metrics(q1 @ d @ q2.T)
    assert got["top5"] == pytest.approx(8 / 9, rel=1e-12)
    assert got["erank"] == pytest.approx(81 / 17, rel=1e-12)


def test_representation_metrics_rejects_vectors():
    with pytest.raises(ValueError, match="matrix"):
        representation_metrics(np.ones(4))


def test_last_linear_weight_is_the_output_layer():
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    key, w = last_linear_weight(model.state_dict())
    assert key == "2.weight" and tuple(w.shape) == (3, 5)


def runs_frame():
    """Three seeds of AdamW and of biostatis with accuracies, times and bytes set by hand."""
    rows = []
    for seed, (a, b) in enumerate([(80.0, 81.0), (82.0, 84.0), (81.0, 84.0)]):
        for opt, acc, sec, mem in (
            ("adamw", a, 10.0 + seed, 800.0),
            ("biostatis", b, 20.0, 1600.0),
        ):
            rows.append(
                dict(
                    dataset="digits", model="mlp", optimizer=opt, lr="0.001", loss="mse",
                    seed=seed, test_acc=acc, train_loss=0.1, diverged=False,
                    sharpness_over_threshold_max=0.5, sharpness_over_threshold_last=0.4,
                    train_seconds=sec, wall_seconds=2 * sec, optimizer_state_bytes=mem,
                    steps=100, top5=0.5 + 0.01 * seed, erank=9.0,
                )
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_pairs_by_seed():
    table = compare(runs_frame())
    assert len(table) == 1
    r = table.iloc[0]
    d = np.array([1.0, 2.0, 3.0])  # biostatis - adamw per seed
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    assert r["acc_delta_mean"] == pytest.approx(2.0)
    assert r["acc_delta_std"] == pytest.approx(1.0)
    assert r["acc_delta_t"] == pytest.approx(t)
    assert r["acc_delta_p"] == pytest.approx(2 * sps.t.sf(t, df=2))
    assert r["test_acc_base_mean"] == pytest.approx(81.0)
    assert r["time_ratio"] == pytest.approx(20.0 / 11.0)
    assert r["memory_ratio"] == pytest.approx(2.0)
    assert r["n_seeds"] == 3 and r["seeds"] == "0 1 2"
    assert r["top5_mean"] == pytest.approx(0.51)


def test_compare_needs_adamw():
    runs = runs_frame()
    with pytest.raises(ValueError, match="adamw"):
        compare(runs[runs["optimizer"] != "adamw"])


def test_latex_table_has_ours_and_the_seeds_claim():
    tex = latex_table(with_claims(compare(runs_frame())))
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert "$2.00 \\pm 1.00$" in tex  # the paired delta
    assert f"${SEED_CLAIMS['acc_other']:.2f}$" in tex and "authors' claim" in tex
    assert "biostatis lr=0.001" in tex


def test_run_record_reads_the_last_row_and_the_ratio():
    history = pd.DataFrame(
        {
            "test_acc": [0.5, 0.9],
            "train_loss": [1.0, 0.2],
            "sharpness": [10.0, float("nan")],
            "threshold": [40.0, 40.0],
        }
    )
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    run = dict(dataset="digits", model="mlp", optimizer="adamw", lr="0.001", loss="mse", seed=0)
    summary = {"train_seconds": 3.0, "optimizer_state_bytes": 120, "steps_done": 10}
    rec = run_record(run, history, summary, model.state_dict())
    assert rec["test_acc"] == pytest.approx(90.0)
    assert rec["sharpness_over_threshold_max"] == pytest.approx(0.25)
    assert rec["sharpness_over_threshold_last"] == pytest.approx(0.25)
    want = representation_metrics(model[0].weight.detach().numpy())
    assert rec["top5"] == pytest.approx(want["top5"])


@pytest.mark.parametrize(
    ("optimizer", "copies", "scalar_bytes"), [("adamw", 2, 4), ("biostatis", 4, 8)]
)
def test_eos_run_records_training_time_and_optimizer_bytes(optimizer, copies, scalar_bytes):
    """What the table's ratios read from run.json: state bytes = copies x the parameters' bytes
    plus one scalar per tensor (AdamW's float32 step, BiostatisV6's float64 gain)."""
    from otgap.data.classification import ClassificationData
    from otgap.train.eos import EosSettings, train_eos

    gen = torch.Generator().manual_seed(0)
    data = ClassificationData(
        name="random",
        x_train=torch.randn(32, 1, 4, 4, generator=gen),
        y_train=torch.randint(0, 3, (32,), generator=gen),
        x_test=torch.randn(8, 1, 4, 4, generator=gen),
        y_test=torch.randint(0, 3, (8,), generator=gen),
        n_classes=3,
    )
    s = EosSettings(
        model="mlp", optimizer=optimizer, lr=1e-3, loss="ce", seed=0,
        model_hyper={"hidden": [5]}, epochs=1, batch_size=16, eval_every=2, eig_every=0,
        n_snapshots=2, eig_subset=16,
    )  # fmt: skip
    res = train_eos(data, s)
    n_params = 16 * 5 + 5 + 5 * 3 + 3
    assert res.summary["optimizer_state_bytes"] == copies * 4 * n_params + 4 * scalar_bytes
    assert 0 < res.summary["train_seconds"] <= res.summary["wall_seconds"]


# ---- arms that can show a difference: matched lr, sweep pairing, equivalence test ---------------
def test_matched_lr_by_hand_and_clear_errors():
    from otgap.analysis.biostatis import matched_lr

    runs = [
        {"lr": 0.001, "settings": {"seed": 0}, "effective_step": {"effective_gain": 1.02}},
        {"lr": 0.001, "settings": {"seed": 1}, "effective_step": {"effective_gain": 1.04}},
    ]
    out = matched_lr(runs)
    assert out["matched_lr"] == pytest.approx(0.001 * 1.03, rel=1e-15)
    assert out["gain_per_seed"] == {"0": 1.02, "1": 1.04}
    with pytest.raises(KeyError, match="effective_step.effective_gain"):
        matched_lr([{"lr": 0.001, "settings": {"seed": 0}}])
    with pytest.raises(ValueError, match="several lrs"):
        matched_lr([runs[0], {**runs[1], "lr": 0.002}])


def test_arm_settings_switch_off_curvature_only():
    from otgap.analysis.biostatis import arm_settings

    base = {"optimizer": "biostatis", "lr": 1e-3, "seed": 2, "eig_every": "epoch", "epochs": 10,
            "batch_sharpness_batches": 4, "optimizer_hyper": {}}  # fmt: skip
    out = arm_settings(base, "adamw", 2e-3)
    assert out == {**base, "optimizer": "adamw", "lr": 2e-3, "eig_every": 0,
                   "batch_sharpness_batches": 0}  # fmt: skip


@pytest.mark.parametrize("diff", [[0.2, -0.3, 0.1, 0.4], [1.5, 2.5, 0.5], [0.1, -0.1, 0.05]])
def test_tost_against_scipy_one_sided_tests(diff):
    from scipy import stats as sps

    from otgap.analysis.biostatis import tost_paired

    out = tost_paired(diff, margin=1.0)
    d = np.asarray(diff)
    p_lo = sps.ttest_1samp(d, -1.0, alternative="greater").pvalue
    p_hi = sps.ttest_1samp(d, 1.0, alternative="less").pvalue
    assert out["p_tost"] == pytest.approx(max(p_lo, p_hi), rel=1e-10)
    assert out["equivalent"] == (max(p_lo, p_hi) < 0.05)
    ci = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(ci, rel=1e-10)
    assert tost_paired([0.3, 0.3, 0.3], 1.0)["note"].startswith("no test")


def _arm_runs():
    """V6 and AdamW in the grid at 1e-3, a matched AdamW arm, a sweep at 3e-4 of both."""
    rows = []
    for seed in range(3):
        base = {"dataset": "digits", "model": "mlp", "loss": "mse", "seed": seed,
                "train_seconds": 1.0, "optimizer_state_bytes": 8.0, "diverged": False,
                "top5": 0.5, "erank": 3.0, "sharpness_over_threshold_max": np.nan,
                "sharpness_over_threshold_last": np.nan}  # fmt: skip
        rows += [
            {**base, "optimizer": "biostatis", "lr": 1e-3, "test_acc": 90.0 + seed,
             "effective_gain": 1.02, "arm": "eos", "matched_to": ""},
            {**base, "optimizer": "adamw", "lr": 1e-3, "test_acc": 89.0 + seed,
             "effective_gain": np.nan, "arm": "eos", "matched_to": ""},
            {**base, "optimizer": "adamw", "lr": 1.02e-3, "test_acc": 90.0 + 1.1 * seed,
             "effective_gain": np.nan, "arm": "matched", "matched_to": "biostatis lr=0.001"},
            {**base, "optimizer": "biostatis", "lr": 3e-4, "test_acc": 80.0 + seed,
             "effective_gain": 1.02, "arm": "sweep", "matched_to": ""},
            {**base, "optimizer": "adamw", "lr": 3e-4, "test_acc": 79.0 + seed,
             "effective_gain": np.nan, "arm": "sweep", "matched_to": ""},
        ]  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_pairs_nominal_matched_and_sweep():
    table = compare(_arm_runs(), margin=1.0)
    got = {(r.pairing, r.lr, r.baseline_lr) for r in table.itertuples()}
    assert got == {("nominal lr", 1e-3, 1e-3), ("lr-matched", 1e-3, 1.02e-3),
                   ("sweep", 3e-4, 3e-4)}  # fmt: skip
    matched = table[table.pairing == "lr-matched"].iloc[0]
    d = np.array([90.0, 91.0, 92.0]) - np.array([90.0, 91.1, 92.2])
    assert matched.acc_delta_mean == pytest.approx(d.mean())
    assert matched.effective_gain == pytest.approx(1.02)
    assert matched.effective_lr == pytest.approx(1.02e-3)
    nominal = table[table.pairing == "nominal lr"].iloc[0]
    assert nominal.acc_delta_mean == pytest.approx(1.0) and not nominal.equivalent
    tex = latex_table(with_claims(table))
    assert "lr-matched" in tex and "Eff. step" in tex and "4x step-size confound" in tex


def test_learning_curves_render(tmp_path):
    from PIL import Image

    from otgap.plots.biostatis import learning_curves

    rows = [
        {"epoch": e, "test_acc": 0.5 + 0.04 * e + 0.01 * s, "test_loss": 1.0 / (1 + e),
         "optimizer": o, "lr": 1e-3, "seed": s, "arm": a}
        for e in range(5) for s in range(3) for o, a in (("adamw", "eos"), ("biostatis", "eos"),
                                                         ("adamw", "matched"))
    ]  # fmt: skip
    learning_curves(pd.DataFrame(rows), tmp_path / "c.pdf", tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as im:
        assert im.size[0] > 800
    with pytest.raises(ValueError, match="lacks columns"):
        learning_curves(
            pd.DataFrame(rows).drop(columns="seed"), tmp_path / "x.pdf", tmp_path / "x.png"
        )
