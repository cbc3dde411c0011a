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
    assert f"${SEED_CLAIMS['acc_other']:.2f}$" in tex and "Seed 003" in tex
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
