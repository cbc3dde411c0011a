"""End-to-end checks of the ODE-solver systems stage on the shared quick run (``quick_run``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from otgap.config import load_config
from otgap.io import read_json, read_npz

from .conftest import REPO

pytestmark = pytest.mark.e2e

CFG = load_config(REPO / "config" / "config.yaml", REPO / "config" / "quick.yaml")
ODE = CFG["systems"]["ode_solver"]


def test_errors_table_and_figure(quick_run):
    from otgap.tables.ode_solver import COLUMNS

    root = quick_run / "systems" / "ode_solver"
    frame = pd.read_csv(root / "errors.csv", dtype={"worst_seed": str})
    assert list(frame.columns) == list(COLUMNS)
    # per problem: the networks over every seed, then the classical solver
    assert list(frame["problem"]) == [p for p in ODE["problems"] for _ in range(2)]
    network = frame[frame["method"] == "network"].set_index("problem")
    classical = frame[frame["method"] != "network"].set_index("problem")
    assert (network["n_seeds"] == len(ODE["seeds"])).all() and len(ODE["seeds"]) >= 3
    for name in ("decay", "logistic"):
        if name in network.index:
            assert network.loc[name, "worst_max_abs_error"] <= 1e-3
    # a seed that missed the tolerance is counted; otherwise the worst error is within it
    for name, row in network.iterrows():
        if row["n_failed"] == 0:
            assert row["worst_max_abs_error"] <= 1e-2, name
    assert (classical["worst_max_abs_error"] <= 1e-3).all()
    assert (frame["median_seconds"] > 0).all()
    solution = read_npz(root / f"problem={ODE['problems'][0]}" / "solution.npz")
    assert solution["pred"].shape[0] == len(ODE["seeds"])  # the figure draws every seed
    assert (root / "errors.tex").read_text().count(r"\toprule") == 1
    for ext in ("pdf", "png"):
        assert (root / f"figure.{ext}").stat().st_size > 10_000


def test_a1_reference_predicts_the_dataset_rollouts(quick_run):
    fhn = CFG["fhn"]
    focus = fhn["analysis"]["focus_condition"]
    for system in fhn["systems"]:
        conditions = fhn.get("system_conditions", {}).get(system) or [
            c["name"] for c in fhn["conditions"]
        ]
        condition = focus if focus in conditions else conditions[0]
        for seed in fhn["seeds"]:
            root = quick_run / "systems" / "ode_solver" / "a1_reference"
            tail = f"system={system}/seed={seed}"
            pred = read_npz(root / tail / "predictions.npz")
            info = read_json(root / tail / "reference.json")
            dataset = (
                quick_run
                / "data"
                / "fhn"
                / f"system={system}"
                / f"condition={condition}"
                / f"seed={seed}"
                / "dataset.npz"
            )
            # scored on the rollout grid of A.1's focus condition (grids follow each condition)
            assert [str(dataset.relative_to(quick_run.parent.parent))] == info["datasets"]
            data = read_npz(dataset)
            rc = int(data["rollout_context"])
            n = ODE["a1_reference"]["n_starts"]
            cols = pred["columns"]
            assert cols[0] == rc and pred["pred"].shape == (n, len(cols), 2)
            truth = data["rollout_y"][:n][:, cols]
            np.testing.assert_array_equal(pred["true"], truth)
            np.testing.assert_array_equal(pred["y_start"], data["rollout_y"][:n, rc - 1])
            rmse = float(np.sqrt(np.mean((pred["pred"] - truth) ** 2)))
            assert rmse == pytest.approx(info["rmse"])
            assert rmse < 0.05  # the known equations: far below any learned model's rollout error
            assert info["train_seconds"] > 0
