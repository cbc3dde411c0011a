"""End-to-end checks of the BiostatisV6 table on the shared quick run (results/quick)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from otgap.optim import format_lr

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tables(quick_run):
    return (
        pd.read_csv(quick_run / "aggregate" / "biostatis" / "runs.csv"),
        pd.read_csv(quick_run / "tables" / "biostatis" / "comparison.csv"),
        (quick_run / "tables" / "biostatis" / "comparison.tex").read_text(),
    )


def test_biostatis_and_adamw_rows_with_the_same_seeds(tables):
    runs, comparison, tex = tables
    seeds = {o: set(g["seed"]) for o, g in runs.groupby("optimizer")}
    assert "adamw" in seeds and "biostatis" in seeds
    assert seeds["biostatis"] <= seeds["adamw"]
    ours = comparison[comparison["optimizer"] == "biostatis"]
    assert len(ours) >= 1 and (ours["n_seeds"] == len(seeds["biostatis"])).all()
    # four copies of the parameters against two, one scalar per tensor each (8 vs 4 bytes)
    assert ours["memory_ratio"].to_numpy() == pytest.approx(2.0, rel=1e-12)
    assert np.isfinite(ours["time_ratio"]).all() and (ours["time_ratio"] > 0).all()
    assert r"\toprule" in tex and "biostatis lr=" in tex and "72.01" in tex


def test_representation_metrics_match_the_saved_weights(tables, quick_run):
    runs, _, _ = tables
    for _, r in runs[runs["arm"] == "eos"].iterrows():  # arms keep no weights
        folder = (
            quick_run
            / "eos"
            / (
                f"dataset={r['dataset']}/model={r['model']}/optimizer={r['optimizer']}/"
                f"lr={format_lr(r['lr'])}/loss={r['loss']}/seed={r['seed']}"
            )
        )
        state = torch.load(folder / "model.pt", weights_only=True)
        last = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2][-1]
        s = np.linalg.svd(last.double().numpy(), compute_uv=False)
        assert r["top5"] == pytest.approx(s[:5].sum() / s.sum(), rel=1e-9)
        assert r["erank"] == pytest.approx(s.sum() ** 2 / (s**2).sum(), rel=1e-9)


def test_lr_matched_arm_uses_the_recorded_gain(tables, quick_run):
    """The matched-lr file is V6's lr x the mean of its runs' recorded gains, the AdamW arm ran at
    that lr, and the table pairs it with V6 (the gain is read from the V6 runs' run.json here)."""
    import json

    runs, comparison, tex = tables
    matched = json.loads((quick_run / "aggregate" / "biostatis" / "matched_lr.json").read_text())
    v6 = runs[(runs["arm"] == "eos") & (runs["optimizer"] == "biostatis")]
    v6 = v6[v6["lr"].astype(float) == matched["v6_lr"]]
    gains = []
    for _, r in v6.iterrows():
        folder = (
            quick_run / "eos" / f"dataset={r['dataset']}/model={r['model']}/optimizer=biostatis/"
            f"lr={format_lr(r['lr'])}/loss={r['loss']}/seed={r['seed']}"
        )
        info = json.loads((folder / "run.json").read_text())
        gains.append(info["effective_step"]["effective_gain"])
        trace = info["optimizer_trace"]
        assert len(trace) >= 1 and all(t["gain_min"] <= t["gain_max"] for t in trace)
    assert matched["matched_lr"] == pytest.approx(matched["v6_lr"] * np.mean(gains), rel=1e-12)
    arm = runs[runs["arm"] == "matched"]
    assert len(arm) == len(v6) and (arm["optimizer"] == "adamw").all()
    assert arm["lr"].astype(float).to_numpy() == pytest.approx(matched["matched_lr"], rel=1e-12)
    row = comparison[comparison["pairing"] == "lr-matched"]
    assert len(row) == 1 and row["baseline_lr"].iloc[0] == pytest.approx(matched["matched_lr"])
    assert "lr-matched" in tex and "Eff. step" in tex


def test_lr_sweep_spans_ten_times_for_both_optimizers(tables):
    runs, comparison, _ = tables
    for opt in ("biostatis", "adamw"):
        lrs = runs[(runs["optimizer"] == opt) & runs["arm"].isin(["eos", "sweep"])]["lr"]
        lrs = sorted(set(lrs.astype(float)))
        assert len(lrs) >= 3 and lrs[-1] / lrs[0] >= 10 - 1e-9, (opt, lrs)
    sweep = comparison[comparison["pairing"].isin(["sweep", "nominal lr"])]
    assert (sweep["lr"].astype(float) == sweep["baseline_lr"].astype(float)).all()
    assert len(set(sweep["lr"].astype(float))) >= 3  # every sweep lr paired at equal lr
