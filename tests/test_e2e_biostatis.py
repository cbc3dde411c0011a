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
    for _, r in runs.iterrows():
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
