"""Workflow-level EoS config: per-entry models/losses/seeds, and checks that stop a bad config."""

from __future__ import annotations

import re

import yaml

from .conftest import QUICK, job_counts, snakemake


def overlay(tmp_path, eos):
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump({"results_root": str(tmp_path / "results"), "eos": eos}))
    return ["--configfile", *QUICK[1:], str(path)]


def test_an_entry_runs_only_its_own_models_losses_and_seeds(tmp_path):
    eos = {
        "models": ["mlp"],
        "losses": ["mse"],
        "seeds": [0, 1],
        "optimizers": [
            {"name": "gd", "lrs": [0.2], "steps": 10},
            {
                "name": "sgd",
                "lrs": [0.1],
                "epochs": 1,
                "batch_size": 64,
                "models": ["cnn"],
                "losses": ["ce"],
                "seeds": [5],
            },
        ],  # fmt: skip
    }
    proc = snakemake("-n", *overlay(tmp_path, eos))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    runs = set(re.findall(r"eos/(dataset=[^\s,]+?)/history\.csv", out))
    assert runs == {
        "dataset=digits/model=mlp/optimizer=gd/lr=0.2/loss=mse/seed=0",
        "dataset=digits/model=mlp/optimizer=gd/lr=0.2/loss=mse/seed=1",
        "dataset=digits/model=cnn/optimizer=sgd/lr=0.1/loss=ce/seed=5",
    }
    assert job_counts(out)["eos_train"] == 3


def test_bad_entries_stop_the_workflow_with_the_key(tmp_path):
    cases = [
        (
            {"gd_train_subset": 1000,
             "optimizers": [{"name": "gd_momentum", "lrs": [0.2], "steps": 10, "eig_subset": 256}]},
            "eos.optimizers[0].eig_subset: 256 differs from eos.gd_train_subset (1000)",
        ),
        (
            {"optimizers": [{"name": "gd", "lrs": [0.2], "steps": 10, "losses": ["hinge"]}]},
            "eos.optimizers[0].losses: unknown loss 'hinge'",
        ),
        ({"losses": ["hinge"]}, "eos.losses: unknown loss 'hinge'"),
    ]  # fmt: skip
    for i, (eos, message) in enumerate(cases):
        sub = tmp_path / str(i)
        sub.mkdir()
        proc = snakemake("-n", *overlay(sub, eos))
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and message in out, out[-2000:]
        assert "Job stats" not in out
