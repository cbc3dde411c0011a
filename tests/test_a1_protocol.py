"""The A.1 protocol (docs/a1_protocol.md): one schedule for every learned model, lr tuning on
validation data only, convergence that can fail, metrics read beside their floors, references
outside the tests, the drive reaching ODE-RNN's hidden ODE, rollouts warmed up as training."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from otgap.analysis.fhn import (
    REFERENCE_MODELS,
    convergence,
    late_best,
    metrics_frame,
    statistics,
    tuning_frame,
)
from otgap.config import fhn_system_train, merge
from otgap.data.fhn import vector_field
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.metrics.a1 import FLOOR_OF, HIGHER_IS_BETTER, TABLE_EXCLUDED, lower_is_better
from otgap.metrics.forecast import evaluate_forecaster
from otgap.models.sequence import SEQUENCE_MODELS
from otgap.train.sequence import FitConfig
from otgap.train.tuning import check_grid, score, train_val_only, tune_cell, tune_lr

from .conftest import REPO

SCHEDULE = ("lr", "epochs", "patience", "eval_every", "plateau_patience", "plateau_factor",
            "grad_clip", "objective", "horizon_ramp_epochs", "keep")  # fmt: skip


def _merged(name: str) -> dict:
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if name == "config.yaml":
        return base
    return merge(base, yaml.safe_load((REPO / "config" / name).read_text()))


def _learned(models):
    return [
        m for m in models
        if not SEQUENCE_MODELS[m].is_baseline and SEQUENCE_MODELS[m].fit_target != "vector_field"
    ]  # fmt: skip


# ---- one schedule ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["config.yaml", "quick.yaml"])
def test_every_learned_model_has_one_schedule_per_config(name):
    cfg = _merged(name)
    train = cfg["fhn"]["train"]
    learned = _learned(cfg["fhn"]["models"])
    assert len(learned) >= 4
    for system in cfg["fhn"]["systems"]:
        over = fhn_system_train(train, system)["overrides"]
        seen = {m: tuple(over.get(m, {}).get(k, train.get(k)) for k in SCHEDULE) for m in learned}
        assert len(set(seen.values())) == 1, (name, system, seen)


def test_quick_config_shares_one_lr_and_has_a_sparse_condition():
    cfg = _merged("quick.yaml")
    assert not cfg["fhn"]["train"]["tuning"]["enabled"]
    conds = {c["name"]: c for c in cfg["fhn"]["conditions"]}
    run = cfg["fhn"].get("system_conditions", {}).get("fhn", list(conds))
    sparse = [c for c in run if conds[c]["obs_fraction"] <= 0.3 and conds[c]["jitter"] > 0]
    assert sparse, run


def test_config_tunes_on_seeds_that_are_not_evaluation_seeds():
    cfg = _merged("config.yaml")
    tuning = cfg["fhn"]["train"]["tuning"]
    assert tuning["enabled"]
    grid = check_grid(tuning["lr_grid"])
    assert len(grid) >= 3 and grid[-1] / grid[0] >= 10 * (1 - 1e-9)
    assert len(set(tuning["seeds"])) >= 2
    assert not set(tuning["seeds"]) & set(cfg["fhn"]["seeds"])


@pytest.mark.parametrize(
    "name", ["config.yaml", "quick.yaml", "original.yaml", "original_quick.yaml"]
)
def test_every_shipped_config_estimates_lyapunov_over_at_least_3000(name):
    cfg = _merged(name)
    if "fhn" in cfg:
        assert float(cfg["fhn"]["lyapunov"]["t_total"]) >= 3000.0


def test_rollouts_warm_up_on_the_training_context_by_default():
    assert DatasetSpec(n_context=16).rollout_context == 16
    assert DatasetSpec(n_context=16, rollout_context=10).rollout_context == 10
    assert _merged("config.yaml")["fhn"]["dataset"]["rollout_context"] is None


# ---- tuning on validation data only ------------------------------------------------------------


def test_grid_rules():
    with pytest.raises(ValueError, match="3 distinct"):
        check_grid([0.001, 0.01])
    with pytest.raises(ValueError, match="10x"):
        check_grid([0.001, 0.002, 0.005])
    assert check_grid([0.01, 0.001, 0.003]) == [0.001, 0.003, 0.01]


def test_score_is_the_geometric_mean_and_a_failed_seed_loses():
    assert score([0.01, 0.04]) == pytest.approx(0.02)
    assert score([0.01, math.inf]) == math.inf
    assert score([0.01, float("nan")]) == math.inf


def test_a_choice_at_the_edge_extends_the_grid():
    # a loss with its minimum at lr = 0.03: the upper edge 0.01 wins first, the grid grows by
    # its ratio (0.01/0.003) to 0.0333..., which wins, then to 0.111..., which loses
    calls = []

    def run_lr(lr):
        calls.append(lr)
        return [(math.log(lr / 0.03)) ** 2 + 1.0, (math.log(lr / 0.03)) ** 2 + 2.0]

    out = tune_lr(run_lr, [0.001, 0.003, 0.01], max_extend=3)
    assert calls[:3] == [0.001, 0.003, 0.01]
    assert calls[3] == pytest.approx(0.01 * 0.01 / 0.003, rel=1e-5)
    assert calls[4] == pytest.approx(calls[3] * 0.01 / 0.003, rel=1e-5)
    assert len(calls) == 5 and out["extended"] == 2
    assert out["chosen_lr"] == pytest.approx(calls[3]) and not out["at_edge"]
    # without extensions the choice stays at the edge and says so
    capped = tune_lr(run_lr, [0.001, 0.003, 0.01], max_extend=0)
    assert capped["chosen_lr"] == 0.01 and capped["at_edge"]


SPEC = DatasetSpec(
    n_train=12, n_val=6, n_test=6, n_context=8, horizon=4, rollout_n=2, rollout_length=40,
    burn_in=50.0,
)  # fmt: skip


def _poisoned(data):
    bad = dict(data)
    for k, v in data.items():
        if not k.startswith(("train_", "val_")) and k != "n_context":
            arr = np.asarray(v)
            if arr.dtype.kind == "f" and arr.size:
                bad[k] = np.full_like(arr, np.nan)
    return bad


def test_tuning_never_reads_the_test_split():
    datas = [build_dataset("fhn", Condition("sparse", 0.3, 0.5), s, SPEC, 0.0,
                           np.array([1.2, 0.5])) for s in (100, 101)]  # fmt: skip
    poisoned = [_poisoned(d) for d in datas]
    assert np.isnan(poisoned[0]["test_y"]).all() and np.isnan(poisoned[0]["rollout_y"]).all()
    cfg = FitConfig(epochs=3, batch_size=12, lr=0.01, eval_every_epochs=1)
    kw = {"hidden": 4}
    field = partial(vector_field, system="fhn", params={})
    clean = tune_cell("grud", kw, datas, cfg, [100, 101], [0.001, 0.003, 0.01], max_extend=0,
                      true_field=field, log=lambda m: None)  # fmt: skip
    dirty = tune_cell("grud", kw, poisoned, cfg, [100, 101], [0.001, 0.003, 0.01], max_extend=0,
                      true_field=field, log=lambda m: None)  # fmt: skip
    assert all(math.isfinite(v) for v in dirty["scores"].values()), dirty
    assert dirty["scores"] == clean["scores"] and dirty["chosen_lr"] == clean["chosen_lr"]
    assert set(train_val_only(datas[0])) == {
        "train_t", "train_y", "train_obs", "val_t", "val_y", "val_obs", "n_context"
    }  # fmt: skip


def test_tuning_frame_reports_grid_and_choice():
    rec = {"system": "fhn", "condition": "jitter", "model": "grud", "grid": [0.001, 0.003, 0.01],
           "chosen_lr": 0.003, "extended": 0, "at_edge": False,
           "scores": {"0.001": 0.2, "0.003": 0.1, "0.01": 0.3}, "tuning_seeds": [100, 101]}  # fmt: skip
    f = tuning_frame([rec])
    assert f.loc[0, "grid"] == "0.001;0.003;0.01" and f.loc[0, "chosen_lr"] == 0.003
    assert tuning_frame([]).empty


# ---- convergence that can fail -----------------------------------------------------------------


def test_late_best_is_the_last_tenth_of_the_bound():
    got = late_best([899, 900, 1000, 10, np.nan], [1000, 1000, 1000, 1000, 1000])
    assert got[:4].tolist() == [0.0, 1.0, 1.0, 0.0] and np.isnan(got[4])


def _frame(values, models=("neural_ode", "grud", "tlstm", "neural_ode_oracle"), seeds=(0, 1, 2)):
    rows = []
    for m in models:
        for s in seeds:
            rows.append((
                {"system": "fhn", "condition": "jitter", "model": m, "seed": s},
                {"rmse_interp": values[m][s], "vpt": float(s)},
            ))  # fmt: skip
    return rows


def test_undertrained_cells_are_marked_and_references_stay_out_of_the_tests():
    rng = np.random.default_rng(0)
    vals = {
        m: list(np.exp(rng.normal(loc, 0.05, 3)))
        for m, loc in (
            ("neural_ode", -3.0),
            ("grud", -2.0),
            ("tlstm", -2.5),
            ("neural_ode_oracle", -5.0),
        )
    }
    runs = []
    for m in ("neural_ode", "grud", "tlstm", "neural_ode_oracle"):
        for s in range(3):
            best = 995 if (m == "grud" and s == 0) else 400
            runs.append({"best_epoch": best, "epoch_bound": 1000, "n_params": 100 + s, "lr": 0.01,
                         "baseline": False})  # fmt: skip
    frame = metrics_frame(_frame(vals), runs=runs)
    stats = statistics(frame, reference="neural_ode", metrics=("rmse_interp", "vpt"))
    row = stats.set_index(["model", "metric"])
    assert row.loc[("grud", "rmse_interp"), "late_best_share"] == pytest.approx(1 / 3)
    assert bool(row.loc[("grud", "rmse_interp"), "undertrained"])
    assert not bool(row.loc[("tlstm", "rmse_interp"), "undertrained"])
    assert row.loc[("tlstm", "rmse_interp"), "n_params"] == 102
    # the oracle: no test; the family holds the two learned comparators (Holm over 2)
    assert np.isnan(row.loc[("neural_ode_oracle", "rmse_interp"), "p_ttest"])
    p = row.loc[("grud", "rmse_interp"), "p_ttest"], row.loc[("tlstm", "rmse_interp"), "p_ttest"]
    assert row.loc[("grud", "rmse_interp"), "p_holm"] == pytest.approx(
        min(1.0, max(2 * min(p), max(p))) if p[0] > p[1] else min(1.0, 2 * p[0])
    )
    conv = convergence(frame).set_index("model")
    assert conv.loc["neural_ode", "late_best_share"] == 0.0


def test_tables_never_rank_references_or_undertrained_cells():
    from otgap.paper.fhn import fhn_table
    from otgap.tables.fhn import summary_table

    def stats_for(grud_value):
        rows = []
        for m, g, under in (
            ("neural_ode", 0.05, False),
            ("grud", grud_value, True),
            ("tlstm", 0.2, False),
            ("neural_ode_oracle", 0.001, False),
        ):
            rows.append(
                {"system": "fhn", "condition": "jitter", "model": m, "metric": "rmse_interp",
                 "mean": g, "std": 0.001, "gmean": g, "gci_low": g * 0.9, "gci_high": g * 1.1,
                 "significant": False, "n_nonfinite": 0, "undertrained": under, "n_params": 10,
                 "lr": 0.01, "late_best_share": 0.5 if under else 0.0}
            )  # fmt: skip
        return pd.DataFrame(rows)

    def tables(stats):
        models = list(stats["model"])
        return (
            summary_table(stats, metrics=["rmse_interp"], models=models, conditions=["jitter"]),
            fhn_table(stats, system="fhn", metrics=["rmse_interp"], models=models,
                      conditions=["jitter"], reference="neural_ode", provenance="p"),
        )  # fmt: skip

    # the undertrained GRU-D is worse than the converged Neural ODE: the Neural ODE is bold,
    # never the (better) oracle reference
    for tex in tables(stats_for(0.1)):
        bold = [line for line in tex.splitlines() if "mathbf" in line]
        assert len(bold) == 1 and bold[0].lstrip().startswith("neural\\_ode &"), tex
    tex = tables(stats_for(0.1))[0]
    grud = [line for line in tex.splitlines() if line.startswith("grud")]
    assert "50\\%" in grud[0] and "^{u}" in grud[-1], tex  # the run section, then the metric
    # an undertrained cell that beats every converged one: the ranking is undecided, no bold
    for tex in tables(stats_for(0.01)):
        assert "mathbf" not in tex, tex


# ---- metrics -----------------------------------------------------------------------------------


def test_directions_are_declared_once():
    from otgap.paper import fhn as paper_fhn

    assert "time_in_band" in HIGHER_IS_BETTER and "vpt" in HIGHER_IS_BETTER
    assert not lower_is_better("time_in_band") and lower_is_better("rmse_interp")
    assert paper_fhn.HIGHER_IS_BETTER is HIGHER_IS_BETTER
    assert paper_fhn.REFERENCE_MODELS == REFERENCE_MODELS
    assert "time_in_band" in TABLE_EXCLUDED


def test_time_in_band_bolds_the_highest_in_every_table():
    from otgap.paper.fhn import fhn_table
    from otgap.tables.fhn import summary_table

    rows = [{"system": "fhn", "condition": "jitter", "model": m, "metric": "vpt", "mean": v,
             "std": 0.1, "significant": False, "n_nonfinite": 0}
            for m, v in (("neural_ode", 1.0), ("grud", 3.0), ("tlstm", 2.0))]  # fmt: skip
    stats = pd.DataFrame(rows)
    for tex in (
        summary_table(stats, metrics=["vpt"], models=["neural_ode", "grud", "tlstm"],
                      conditions=["jitter"]),
        fhn_table(stats, system="fhn", metrics=["vpt"], models=["neural_ode", "grud", "tlstm"],
                  conditions=["jitter"], reference="neural_ode", provenance="p"),
    ):  # fmt: skip
        bold = [line for line in tex.splitlines() if "mathbf" in line]
        assert len(bold) == 1 and bold[0].lstrip().startswith("grud"), tex


class _Truth(torch.nn.Module):
    """A 'model' that returns the true values everywhere (it is handed them): its attractor
    metrics are the truth's own, the floors' definition."""

    is_baseline = True

    def __init__(self, data):
        super().__init__()
        self.rollout_y = torch.as_tensor(data["rollout_y"])

    def forward(self, t, y, obs, forecast_from=None):
        if y.shape == self.rollout_y.shape:
            return self.rollout_y.clone()
        return y.clone()


class _Frozen(torch.nn.Module):
    def forward(self, t, y, obs, forecast_from=None):
        out = y.clone()
        out[:, forecast_from:] = y[:, forecast_from - 1 : forecast_from]
        return out


def test_floors_are_the_truths_own_score_and_do_not_depend_on_the_model():
    from otgap.data.fhn import attractor_orbit, attractor_std

    orbit, period = attractor_orbit("fhn", {}, seed=0)
    scale = attractor_std("fhn", {}, seed=0)
    spec = DatasetSpec(n_train=4, n_val=2, n_test=4, n_context=8, horizon=4, rollout_n=3,
                       rollout_length=300, burn_in=100.0, rollout_unseen_jitter=None)  # fmt: skip
    data = build_dataset("fhn", Condition("jitter", 0.3, 1.0), 0, spec, 0.0, scale,
                         orbit=orbit, orbit_period=period)  # fmt: skip
    truth, _ = evaluate_forecaster(_Truth(data), data, keep_rollouts=0)
    frozen, _ = evaluate_forecaster(_Frozen(), data, keep_rollouts=0)
    for metric, floor in FLOOR_OF.items():
        if metric.endswith("_unseen"):
            continue
        assert truth[metric] == pytest.approx(truth[floor], rel=1e-12, abs=1e-12), metric
        assert frozen[floor] == pytest.approx(truth[floor], rel=1e-12, abs=1e-12), metric
    assert frozen["orbit_distance"] > 5 * truth["orbit_distance_floor"]


def test_period_error_is_undefined_on_a_chaotic_system():
    from otgap.data.fhn import attractor_orbit, attractor_std

    orbit, period = attractor_orbit("fhn", {}, seed=0)
    scale = attractor_std("fhn", {}, seed=0)
    spec = DatasetSpec(n_train=4, n_val=2, n_test=4, n_context=8, horizon=4, rollout_n=2,
                       rollout_length=200, burn_in=100.0, rollout_unseen_jitter=None)  # fmt: skip
    # a positive exponent given to the dataset makes its Lyapunov time finite (chaotic)
    data = build_dataset("fhn", Condition("jitter", 0.3, 1.0), 0, spec, 0.05, scale,
                         orbit=orbit, orbit_period=period)  # fmt: skip
    m, _ = evaluate_forecaster(_Frozen(), data, keep_rollouts=0)
    assert np.isnan(m["period_error"]) and np.isnan(m["period_error_floor"])
    assert np.isfinite(m["orbit_distance"]) and np.isfinite(m["vpt"])


# ---- the drive reaches ODE-RNN's hidden ODE ----------------------------------------------------


def test_forced_odernn_hidden_field_sees_the_drive():
    torch.manual_seed(0)
    w = 1.3
    model = SEQUENCE_MODELS["odernn"](hidden=5, method="euler", n_sub=1, drive_omega=w).double()
    t = torch.tensor([[2.0, 2.7]], dtype=torch.float64)
    model._phase0 = torch.remainder(w * t[:, 0], 2 * math.pi)
    h = torch.randn(1, 5, dtype=torch.float64)
    gap, t0 = torch.tensor([0.7], dtype=torch.float64), torch.tensor([0.4], dtype=torch.float64)
    # by hand: one Euler step of dh/dt = W2 tanh(W1 [h, cos phi, sin phi] + b1) + b2
    phi = float(model._phase0) + w * 0.4
    x = torch.cat([h, torch.tensor([[math.cos(phi), math.sin(phi)]], dtype=torch.float64)], -1)
    lin1, lin2 = model.field[0], model.field[2]
    expected = h + 0.7 * lin2(torch.tanh(lin1(x)))
    torch.testing.assert_close(model.evolve(h, gap, t0), expected, rtol=1e-12, atol=1e-12)
    # another start time (another drive phase) gives another step
    other = model.evolve(h, gap, t0 + 1.0)
    assert float((other - expected).detach().abs().max()) > 1e-6
    with pytest.raises(ValueError, match="t0"):
        model.evolve(h, gap)


def test_paper_names_undertrained_cells_and_never_calls_them_best():
    from otgap.paper.fhn import fhn_macros

    rows = [
        {"system": "fhn", "condition": "sparse30", "model": m, "metric": "rmse_interp",
         "mean": v, "std": 0.01, "significant": False, "n_nonfinite": 0, "undertrained": u}
        for m, v, u in (("neural_ode", 0.05, False), ("odernn", 0.02, True),
                        ("neural_ode_oracle", 0.01, False), ("grud", 0.09, False))
    ]  # fmt: skip
    ms = fhn_macros(pd.DataFrame(rows), system="fhn",
                    conditions=[{"name": "sparse30", "jitter": 0.3, "obs_fraction": 0.3}],
                    models=["neural_ode", "odernn", "neural_ode_oracle", "grud"],
                    reference="neural_ode", lyapunov=None, n_seeds=3)  # fmt: skip
    # the undertrained ODE-RNN (0.02) would beat the converged Neural ODE (0.05): undecided
    assert ms.value("FhnBestSparsest") == "undecided (undertrained cells)"
    assert ms.value("FhnUndertrained") == "\\texttt{odernn/sparse30}"
    assert ms.value("FhnNSignificant") == "0 of 2"  # grud, odernn: the oracle is not tested


# ---- the tuning rule in the workflow (a small real run in a copy of the repository) --------------

TUNED = {
    "fhn": {
        "systems": ["fhn"],
        "seeds": [0],
        "conditions": [{"name": "jitter", "jitter": 0.3, "obs_fraction": 1.0}],
        "system_conditions": {"fhn": ["jitter"], "fhn_forced": ["jitter"]},
        "models": ["grud", "last_observation"],
        "lyapunov": {"t_total": 200.0, "dt": 0.05},
        "dataset": {"n_train": 8, "n_val": 4, "n_test": 4, "rollout_n": 1, "rollout_length": 60},
        "train": {
            "epochs": 2,
            "eval_every": 1,
            "horizon_ramp_epochs": 0,
            "overrides": {},
            "system_overrides": {},
            "tuning": {
                "enabled": True,
                "lr_grid": [0.001, 0.003, 0.01],
                "seeds": [100, 101],
                "max_extend": 0,
            },
        },  # fmt: skip
        "analysis": {"reference": "grud", "focus_condition": "jitter"},
    }
}


@pytest.mark.e2e
def test_tuned_lr_reaches_the_training_job(tmp_path):
    import json
    import shutil

    from .conftest import QUICK, snakemake

    repo = tmp_path / "repo"
    for name in ("workflow", "scripts", "src", "config", "profiles"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tuned.yaml").write_text(yaml.safe_dump(TUNED))
    cell = "results/quick/fhn/system=fhn/condition=jitter/model=grud"
    table = "results/quick/tables/fhn/summary.tex"
    proc = snakemake(f"{cell}/seed=0/run.json", table, *QUICK, "tuned.yaml", cwd=repo)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tuned = json.loads((repo / cell / "tuning.json").read_text())
    assert tuned["grid"] == [0.001, 0.003, 0.01] and tuned["tuning_seeds"] == [100, 101]
    assert tuned["chosen_lr"] in tuned["grid"]
    run = json.loads((repo / cell / "seed=0/run.json").read_text())
    assert run["lr_source"] == "tuned" and run["lr"] == tuned["chosen_lr"]
    assert tuned["schedule"]["epochs"] == 2  # the cell's own schedule, only the lr varies
    # the choice is reported: tuning.csv and the summary table's notes
    frame = pd.read_csv(repo / "results/quick/aggregate/fhn/tuning.csv")
    assert frame.loc[0, "model"] == "grud" and frame.loc[0, "chosen_lr"] == tuned["chosen_lr"]
    tex = (repo / table).read_text()
    assert f"fhn/jitter/grud: 0.001;0.003;0.01 -> {tuned['chosen_lr']:g}" in tex
    stats = pd.read_csv(repo / "results/quick/aggregate/fhn/stats.csv")
    grud = stats[(stats.model == "grud") & (stats.metric == "rmse_interp")].iloc[0]
    assert grud["lr"] == tuned["chosen_lr"] and grud["n_params"] > 0
