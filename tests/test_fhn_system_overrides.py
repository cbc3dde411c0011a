"""Per-system training settings of the A.1 stage (``fhn.train.system_overrides``): the merge, the
start-up checks that reject a bad entry before any job, and the merged settings reaching the
training job of that system only (a small run of its own in a copy of the repository)."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml

from otgap.config import fhn_system_train, merge

from .conftest import QUICK, REPO, snakemake

# ---- the merge (no workflow) -----------------------------------------------------------------


def test_system_entry_merges_key_by_key_over_the_global_settings():
    train = {
        "model_kwargs": {"neural_ode": {"n_sub": 1, "solver": "rk4"}, "odernn": {"n_sub": 1}},
        "overrides": {"neural_ode_oracle": {"epochs": 3000, "lr": 0.005}},
        "system_overrides": {
            "fhn_forced": {
                "model_kwargs": {"neural_ode": {"n_sub": 2}, "neural_ode_oracle": {"n_sub": 2}},
                "overrides": {"neural_ode": {"lr": 0.01}, "neural_ode_oracle": {"lr": 0.002}},
            }
        },
    }
    forced = fhn_system_train(train, "fhn_forced")
    assert forced["model_kwargs"] == {
        "neural_ode": {"n_sub": 2, "solver": "rk4"},  # the global solver kept
        "odernn": {"n_sub": 1},
        "neural_ode_oracle": {"n_sub": 2},
    }
    assert forced["overrides"] == {
        "neural_ode_oracle": {"epochs": 3000, "lr": 0.002},  # the global epochs kept
        "neural_ode": {"lr": 0.01},
    }
    # a system without an entry gets the global settings, unchanged
    plain = fhn_system_train(train, "fhn")
    assert plain == {"model_kwargs": train["model_kwargs"], "overrides": train["overrides"]}
    # the config is not modified in place
    assert train["model_kwargs"]["neural_ode"] == {"n_sub": 1, "solver": "rk4"}
    assert fhn_system_train({}, "fhn") == {"model_kwargs": {}, "overrides": {}}


def test_quick_config_changes_the_forced_system_only():
    """The quick config's fhn_forced entry gives both Neural ODEs the same substeps, and the fhn
    system keeps the global settings."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    quick = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    train = merge(base, quick)["fhn"]["train"]
    plain = fhn_system_train(train, "fhn")
    assert plain["model_kwargs"] == train["model_kwargs"]
    assert plain["overrides"] == train["overrides"]
    forced = fhn_system_train(train, "fhn_forced")["model_kwargs"]
    for key in ("n_sub", "max_step", "solver"):
        assert forced["neural_ode"].get(key) == forced["neural_ode_oracle"].get(key), key


def test_quick_forced_system_trains_every_learned_model_alike():
    """No training setting is tuned for one side: the quick config gives no learned model an
    override on any system (one schedule; tests/test_a1_protocol.py checks every key)."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    quick = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    train = merge(base, quick)["fhn"]["train"]
    for system in ("fhn", "fhn_forced"):
        over = fhn_system_train(train, system)["overrides"]
        assert set(over) <= {"neural_ode_oracle", "last_observation"}, (system, over)


# ---- bad entries rejected at start-up, naming the key (dry runs) ---------------------------------

BAD = {
    "unknown_system": (
        {"fhn_forcd": {"overrides": {"neural_ode": {"lr": 0.01}}}},
        ["fhn.train.system_overrides", "fhn_forcd"],
    ),
    "unknown_section": (
        {"fhn_forced": {"overides": {"neural_ode": {"lr": 0.01}}}},
        ["fhn.train.system_overrides.fhn_forced", "overides"],
    ),
    "unknown_training_key": (
        {"fhn_forced": {"overrides": {"neural_ode": {"learning_rate": 0.01}}}},
        ["fhn.train.system_overrides.fhn_forced.overrides.neural_ode", "learning_rate"],
    ),
    "unknown_model": (
        {"fhn_forced": {"overrides": {"neural_od": {"lr": 0.01}}}},
        ["fhn.train.system_overrides.fhn_forced.overrides", "neural_od"],
    ),
    "unknown_model_keyword": (
        {"fhn_forced": {"model_kwargs": {"neural_ode": {"nsub": 2}}}},
        ["fhn.train.system_overrides.fhn_forced.model_kwargs.neural_ode", "nsub"],
    ),
    "learned_model_own_schedule": (  # the one-schedule protocol (docs/a1_protocol.md)
        {"fhn_forced": {"overrides": {"odernn": {"lr": 0.02}}}},
        ["fhn.train.system_overrides.fhn_forced.overrides.odernn", "one-schedule protocol"],
    ),
    "integration_differs": (
        {"fhn_forced": {"model_kwargs": {"neural_ode": {"n_sub": 3}}}},
        ["must integrate alike on system 'fhn_forced'", "n_sub differs (3 vs"],
    ),
}  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize("case", list(BAD))
def test_bad_system_override_is_rejected_before_any_job(tmp_path, case):
    entry, needles = BAD[case]
    overlay = {"results_root": str(tmp_path / "results"),
               "fhn": {"train": {"system_overrides": entry}}}  # fmt: skip
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    t0 = time.perf_counter()
    proc = snakemake("-n", *QUICK, str(path))
    elapsed = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "Building DAG" not in out and "Job stats" not in out, out[-2000:]
    for needle in needles:
        assert needle in out, (needle, out[-2000:])
    assert elapsed < 120, f"rejection took {elapsed:.1f} s"


# ---- the merged settings reach the job of that system only (a small real run) ---------------------

FORCED_LR, FORCED_SUB = 0.0123, 3
SMALL = {
    "fhn": {
        "seeds": [0],
        "lyapunov": {"t_total": 200.0, "dt": 0.05},
        "dataset": {"n_train": 8, "n_val": 4, "n_test": 4, "rollout_n": 1, "rollout_length": 60},
        "train": {
            "epochs": 2,
            "eval_every": 1,
            "horizon_ramp_epochs": 0,
            "system_overrides": {
                "fhn_forced": {
                    "model_kwargs": {
                        "neural_ode": {"n_sub": FORCED_SUB},
                        "neural_ode_oracle": {"n_sub": FORCED_SUB},
                    },
                    "overrides": {
                        "neural_ode": {
                            "lr": FORCED_LR,
                            "epochs": 2,
                            "reason": "test: a system's own setting reaches its job only",
                        }
                    },  # fmt: skip
                }
            },
        },
    }
}
CELL = "results/quick/fhn/system={}/condition=jitter/model=neural_ode/seed=0"


@pytest.mark.e2e
def test_system_settings_reach_only_that_systems_training_job(tmp_path):
    repo = tmp_path / "repo"
    for name in ("workflow", "scripts", "src", "config", "profiles"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "small.yaml").write_text(yaml.safe_dump(SMALL))
    targets = [CELL.format(s) + "/run.json" for s in ("fhn", "fhn_forced")]
    proc = snakemake(*targets, *QUICK, "small.yaml", cwd=repo)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    from otgap.train.sequence import load_sequence_model

    quick = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())["fhn"]["train"]
    expected = {  # system -> (lr, n_sub): the forced system's own, the quick config's for fhn
        "fhn": (quick["lr"], quick["model_kwargs"]["neural_ode"]["n_sub"]),
        "fhn_forced": (FORCED_LR, FORCED_SUB),
    }
    assert expected["fhn"] != expected["fhn_forced"]
    for system, (lr, n_sub) in expected.items():
        cell = repo / CELL.format(system)
        params = json.loads((cell / "run.json").read_text())["provenance"]["params"]
        assert params["system"] == system
        assert params["lr"] == lr and params["model_kwargs"]["n_sub"] == n_sub, params
        history = (cell / "history.csv").read_text().splitlines()
        lr_col = history[0].split(",").index("lr")
        assert float(history[1].split(",")[lr_col]) == pytest.approx(lr)  # the optimiser's
        _, model = load_sequence_model(cell / "model.pt")
        assert model.n_sub == n_sub
