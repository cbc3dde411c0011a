"""Config validation: unknown keys, wrong types and out-of-range values stop the run before any job."""

from pathlib import Path

import pytest
import yaml

from otgap.config import (
    ConfigError,
    canonicalise_in_place,
    load_config,
    merge,
    stage_resources,
    validate_config,
)

from .conftest import QUICK, REPO, snakemake

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def paper():
    return load_config(REPO / "config" / "config.yaml")


def test_shipped_configs_are_valid():
    validate_config(paper(), SCHEMA)
    quick = load_config(REPO / "config" / "config.yaml", REPO / "config" / "quick.yaml")
    validate_config(quick, SCHEMA)
    assert quick["run"] == "quick" and paper()["run"] == "paper"


def test_defaults_are_filled():
    cfg = paper()
    del cfg["fhn"]["dataset"]["holdout_fraction"]
    del cfg["data"]
    validate_config(cfg, SCHEMA)
    assert cfg["fhn"]["dataset"]["holdout_fraction"] == 0.2
    assert cfg["data"]["root"] == "resources"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (
            lambda c: c["fhn"]["conditions"][1].update(obs_fraction=1.5),
            "fhn.conditions[1].obs_fraction",
        ),
        (
            lambda c: c["fhn"]["conditions"][0].update(obs_fraction=0),
            "fhn.conditions[0].obs_fraction",
        ),
        (lambda c: c["eos"]["optimizers"][0].update(lrs=[-0.1]), "eos.optimizers[0].lrs[0]"),
        (lambda c: c["fhn"]["train"].update(lr="fast"), "fhn.train.lr"),
        (lambda c: c["fhn"]["dataset"].update(n_trian=3), "fhn.dataset"),
        (lambda c: c.update(typo=1), "<top level>"),
        (lambda c: c["resources"]["fhn_train"].update(gpu=-1), "resources.fhn_train.gpu"),
    ],
)
def test_bad_values_name_the_key(mutate, where):
    cfg = paper()
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    assert where in str(err.value)


def test_schema_forbids_unknown_keys_at_every_level():
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert "additionalProperties" in node, f"{path} allows unknown keys"
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(schema, "schema")


def test_merge_replaces_lists_and_merges_dicts():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    out = merge(base, {"a": {"y": [3]}, "c": 4})
    assert out == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base["a"]["y"] == [1, 2]


def test_stage_resources_fill_from_default():
    cfg = paper()
    r = stage_resources(cfg, "fhn_train")
    assert r == cfg["resources"]["fhn_train"]
    assert stage_resources(cfg, "unknown_stage") == cfg["resources"]["default"]


def _overlay(tmp_path: Path, data: dict) -> str:
    p = tmp_path / "overlay.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_workflow_stops_before_any_job_on_bad_config(tmp_path):
    bad = {
        "results_root": str(tmp_path / "results"),
        "fhn": {"conditions": [{"name": "x", "jitter": 0.3, "obs_fraction": 1.5}]},
    }
    proc = snakemake("-n", *QUICK, _overlay(tmp_path, bad))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "fhn.conditions[0].obs_fraction" in out
    assert "Job stats" not in out


def test_workflow_rejects_unwritable_results_root(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    overlay = _overlay(tmp_path, {"results_root": str(blocker / "results")})
    proc = snakemake("-n", *QUICK, overlay)
    assert proc.returncode != 0
    assert "cannot create output directory" in proc.stdout + proc.stderr


def test_workflow_rejects_unknown_registry_names(tmp_path):
    overlay = _overlay(tmp_path, {"results_root": str(tmp_path / "r"), "fhn": {"models": ["nope"]}})
    proc = snakemake("-n", *QUICK, overlay)
    assert proc.returncode != 0
    assert "fhn.models" in proc.stdout + proc.stderr and "nope" in proc.stdout + proc.stderr


def test_canonical_order_ignores_yaml_key_order():
    a = {"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": 0}
    b = {"a": 0, "b": {"x": [{"p": 2, "q": 1}], "y": 1}}
    ident = a
    canonicalise_in_place(a)
    canonicalise_in_place(b)
    assert ident is a and str(a) == str(b)
