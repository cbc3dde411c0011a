"""Bad input stopped at the door, corrupted parts never built upon (issue: adversarial pass).

- names that become path components are plain folder names; every output lies under the run's
  results or logs folder (otgap.paths);
- every number is finite, counts and sizes have upper bounds;
- a generated part changed after its rule wrote it stops its consumer with the file named and
  ``--forcerun <rule>`` (otgap.jobs records), and every generated part is a final target;
- ``python -m otgap.config`` runs the workflow's own start-up checks (parity with Snakemake);
- the command-line entries report bad input in one message with exit status 2.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from otgap.config import (
    ConfigError,
    check_config,
    load_config,
    read_yaml,
    validate_config,
)

from .conftest import QUICK, REPO, snakemake

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHIPPED = ["quick", "original", "original_quick", "biostatis_cifar"]


@pytest.fixture(scope="module")
def quick_config() -> dict:
    return load_config(REPO / "config" / "config.yaml", REPO / "config" / "quick.yaml")


def _overlay_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def _schema_error(base: dict, tmp_path: Path, text: str) -> str:
    """The schema/finiteness message for ``text`` as a YAML overlay of ``base``."""
    from otgap.config import merge

    cfg = merge(copy.deepcopy(base), read_yaml(_overlay_text(tmp_path, text)))
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    return str(err.value)


# ---- 1. names that are path components ------------------------------------------------------

PATH_NAMES = {
    "run": "run: {v}\n",
    "paper.compare_run": "paper: {{compare_run: {v}}}\n",
    "fhn.conditions[0].name": "fhn:\n  conditions:\n    - {{name: {v}, jitter: 0.1, obs_fraction: 1}}\n",
    "fhn.models[0]": "fhn: {{models: [{v}]}}\n",
    "eos.datasets[0]": "eos: {{datasets: [{v}]}}\n",
    "eos.models[0]": "eos: {{models: [{v}]}}\n",
    "eos.optimizers[0].name": "eos:\n  optimizers:\n    - {{name: {v}, lrs: [0.1], steps: 2}}\n",
    "biostatis_cifar.optimizers[0].name": "biostatis_cifar:\n  optimizers:\n    - {{name: {v}, lr: 0.1}}\n",
    "systems.landau.runs[0].optimizer": "systems:\n  landau:\n    runs:\n      - {{model: fc1, optimizer: {v}, lr: 0.1}}\n",
}


@pytest.mark.parametrize("value", ['"."', '".."', '"..."', '"/tmp/x"', '"a/b"', '".hidden"'])
@pytest.mark.parametrize("key", list(PATH_NAMES))
def test_path_component_names_are_plain_folder_names(quick_config, tmp_path, key, value):
    message = _schema_error(quick_config, tmp_path, PATH_NAMES[key].format(v=value))
    assert f"  {key}: " in message, message


def test_fhn_systems_are_an_enum(quick_config, tmp_path):
    message = _schema_error(quick_config, tmp_path, 'fhn: {systems: [".."]}\n')
    assert "fhn.systems[0]" in message and "allowed: 'fhn', 'fhn_forced'" in message


def test_run_message_says_what_a_folder_name_is(quick_config, tmp_path):
    message = _schema_error(quick_config, tmp_path, 'run: ".."\n')
    assert "run: '..' is not a folder name" in message and "never '.', '..'" in message


@pytest.mark.parametrize(
    "overlay",
    [
        {"results_root": ".", "run": "src"},
        {"results_root": ".", "run": "workflow"},
        {"logs_root": "paper", "run": "generated"},
        {"results_root": "..", "run": REPO.name},  # the repository itself
        {"logs_root": str(REPO.parent), "run": REPO.name},
        {"data": {"root": "."}},
    ],
)
def test_run_folders_never_the_repository_or_a_source_folder(quick_config, overlay):
    from otgap.config import merge
    from otgap.paths import run_roots

    with pytest.raises(ConfigError) as err:
        run_roots(merge(quick_config, overlay), REPO)
    assert "resolves to" in str(err.value)


def test_run_folders_of_the_shipped_configs_are_accepted(quick_config):
    from otgap.paths import run_roots

    roots = run_roots(quick_config, REPO)
    assert roots == [str(REPO / "results" / "quick"), str(REPO / "logs" / "quick")]
    # a results root outside the repository (a cluster's scratch space) is fine
    run_roots({**quick_config, "results_root": "/scratch/me/results"}, REPO)


def test_check_under_names_every_path_outside_the_roots(tmp_path):
    from otgap.paths import check_under

    roots = ["results/q", "logs/q"]
    check_under(
        ["results/q/a.csv", "logs/q/x/{rule}.log", "results/q/{x}/y.csv", "results/q/f_{n}.tex"],
        roots,
        tmp_path,
    )
    for bad in ("results/q/../../data/x.npz", "results/qq/a.csv", "paper/generated/x.tex",
                "/etc/x", "results/{run}/a.csv", "results/q_{n}/a.csv"):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            check_under(["results/q/ok.csv", bad], roots, tmp_path)
        assert bad in str(err.value) and "results/q/ok.csv" not in str(err.value)


# ---- 2. every number finite; counts and sizes bounded ---------------------------------------

NON_FINITE = {  # at least one key of every section that holds numbers (data: only strings)
    "fhn.train.lr": "fhn: {train: {lr: .nan}}\n",
    "fhn.conditions[0].jitter": "fhn:\n  conditions:\n    - {name: a, jitter: .inf, obs_fraction: 1}\n",
    "fhn.conditions[0].obs_fraction": "fhn:\n  conditions:\n    - {name: a, jitter: 0.1, obs_fraction: .nan}\n",
    "fhn.dataset.burn_in": "fhn: {dataset: {burn_in: .nan}}\n",
    "fhn.system_params.fhn.a": "fhn: {system_params: {fhn: {a: -.inf}}}\n",
    "fhn.train.model_kwargs.neural_ode.n_sub": "fhn: {train: {model_kwargs: {neural_ode: {n_sub: .nan}}}}\n",
    "eos.eig_tol": "eos: {eig_tol: .nan}\n",
    "eos.landscape.padding": "eos: {landscape: {padding: .inf}}\n",
    "eos.optimizers[0].hyper.beta": "eos:\n  optimizers:\n    - {name: gd_momentum, lrs: [0.1], steps: 2, hyper: {beta: .nan}}\n",
    "systems.landau.landau.alpha": "systems: {landau: {landau: {alpha: .nan}}}\n",
    "systems.ode_solver.a1_reference.periods": "systems: {ode_solver: {a1_reference: {periods: .inf}}}\n",
    "systems.ode_solver.options.adam_lr": "systems: {ode_solver: {options: {adam_lr: .inf}}}\n",
    "resources.default.mem_mb": "resources: {default: {mem_mb: .inf}}\n",
    "biostatis_cifar.optimizers[0].lr": "biostatis_cifar:\n  optimizers:\n    - {name: adamw, lr: .nan}\n",
    "paper.source_date_epoch": "paper: {source_date_epoch: .inf}\n",
}


@pytest.mark.parametrize("key", list(NON_FINITE))
def test_nan_and_infinity_are_rejected_with_their_key(quick_config, tmp_path, key):
    message = _schema_error(quick_config, tmp_path, NON_FINITE[key])
    assert f"  {key}: " in message, message


def test_non_finite_names_each_key_path():
    from otgap.config import non_finite

    found = non_finite({"a": {"b": [1.0, float("nan")], "c": float("-inf")}, "d": 2, "e": "nan"})
    assert found == ["  a.b[1]: nan is not a finite number", "  a.c: -inf is not a finite number"]


@pytest.mark.parametrize(
    "text, key",
    [
        ("fhn: {train: {epochs: 1000000000000000000000}}\n", "fhn.train.epochs"),
        ("fhn: {train: {epochs: 15001}}\n", "fhn.train.epochs"),
        ("fhn: {dataset: {rollout_length: 20001}}\n", "fhn.dataset.rollout_length"),
        ("fhn: {seeds: [4294967296]}\n", "fhn.seeds[0]"),
        ("eos: {landscape: {grid: 401}}\n", "eos.landscape.grid"),
        ("eos: {gd_train_subset: 50001}\n", "eos.gd_train_subset"),
        ("systems: {landau: {train: {epochs: 1001}}}\n", "systems.landau.train.epochs"),
        ("biostatis_cifar: {epochs: 51}\n", "biostatis_cifar.epochs"),
        (
            "fhn: {train: {overrides: {neural_ode: {epochs: 1000000000000000000000}}}}\n",
            "fhn.train.overrides.neural_ode.epochs",
        ),
        (
            "fhn: {train: {system_overrides: {fhn: {overrides: {grud: {batch_size: 641}}}}}}\n",
            "fhn.train.system_overrides.fhn.overrides.grud.batch_size",
        ),
    ],
)
def test_counts_and_sizes_have_upper_bounds(quick_config, tmp_path, text, key):
    message = _schema_error(quick_config, tmp_path, text)
    assert f"  {key}: " in message and "maximum" in message, message


def _numbers(node, path=()):
    if isinstance(node, bool):
        return
    if isinstance(node, int | float):
        yield tuple("[]" if isinstance(p, int) else p for p in path), node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _numbers(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numbers(v, (*path, i))


def _maxima(schema, path=()):
    """(key path, maximum) of every schema property with a maximum, references followed."""
    defs = schema.get("definitions", {})

    def walk(node, path):
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            node = {
                **defs[node["$ref"].split("/")[-1]],
                **{k: v for k, v in node.items() if k != "$ref"},
            }
        if "maximum" in node:
            yield path, node["maximum"]
        for name, sub in node.get("properties", {}).items():
            yield from walk(sub, (*path, name))
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], (*path, "[]"))

    yield from walk(schema, path)


def test_every_shipped_config_is_within_the_bounds_and_they_are_tight():
    """Every shipped config passes, and each integer bound of a count or size is at most 10x the
    largest value any shipped config (with the schema's defaults) gives that key."""
    schema = read_yaml(SCHEMA)
    largest: dict[tuple, float] = {}
    for name in ["config", *SHIPPED]:
        files = [REPO / "config" / "config.yaml"] + (
            [REPO / "config" / f"{name}.yaml"] if name != "config" else []
        )
        cfg = validate_config(load_config(*files), schema)
        for path, value in _numbers(cfg):
            largest[path] = max(largest.get(path, value), value)
    loose = [
        (".".join(path), maximum, largest[path])
        for path, maximum in _maxima(schema)
        # fractions, tolerances and the seed range are properties of the quantity, not sizes
        if path in largest
        and maximum > 1
        and maximum != 4294967295
        and maximum > 10 * max(largest[path], 1)
        and path != ("systems", "landau", "n_train")  # bounded by the data set (1796 samples)
    ]
    assert loose == []


# ---- 3. generated parts verified before use ------------------------------------------------


def _smk(tmp_path, rule, inputs=(), outputs=()):
    return SimpleNamespace(
        rule=rule,
        input=list(map(str, inputs)),
        output=list(map(str, outputs)),
        params=SimpleNamespace(),
        log=[str(tmp_path / "logs" / "r" / f"{rule}.log")],
        threads=1,
        wildcards={},
        config={"results_root": str(tmp_path / "results"), "run": "r"},
    )


MACROS = "\\newcommand{\\FhnNSeeds}{5}\n\\newcommand{\\FhnSystem}{fhn}\n"


def _write_macros(tmp_path) -> Path:
    from otgap.io import write_text
    from otgap.jobs import job

    macros = tmp_path / "results" / "r" / "paper" / "generated" / "fhn_macros.tex"
    with job(_smk(tmp_path, "paper_fhn", outputs=[macros])):
        write_text(macros, MACROS)
    return macros


def test_a_generated_part_gets_its_sha256_recorded(tmp_path):
    import hashlib

    _write_macros(tmp_path)
    record = tmp_path / "results/r/.sha256/paper/generated/fhn_macros.tex.sha256"
    assert record.read_text().split() == [hashlib.sha256(MACROS.encode()).hexdigest(), "paper_fhn"]


def test_an_unchanged_generated_part_is_used(tmp_path):
    from otgap.jobs import job

    macros = _write_macros(tmp_path)
    used = []
    with job(
        _smk(
            tmp_path, "paper_pdf", inputs=[macros], outputs=[tmp_path / "results/r/paper/main.pdf"]
        )
    ):
        used.append(macros.read_text())
    assert used == [MACROS]


@pytest.mark.parametrize("change", ["edit", "truncate"])
def test_a_changed_generated_part_stops_its_consumer_naming_file_and_forcerun(
    tmp_path, capsys, change
):
    from otgap.jobs import ChangedInput, job

    macros = _write_macros(tmp_path)
    if change == "edit":  # a plausible edit: the PDF would cite the wrong number
        macros.write_text(macros.read_text().replace("\\FhnNSeeds}{5}", "\\FhnNSeeds}{99}"))
    else:
        macros.write_text("")
    ran = []
    with pytest.raises(ChangedInput) as err, job(_smk(tmp_path, "paper_pdf", inputs=[macros])):
        ran.append(True)
    assert ran == []  # the body (latexmk) never ran
    assert str(macros) in str(err.value) and "--forcerun paper_fhn" in str(err.value)
    assert "--forcerun paper_fhn" in capsys.readouterr().err  # the one-line failure message


def test_table_and_figure_stages_verify_training_stages_do_not():
    from otgap.jobs import verifies_inputs

    for rule in ("paper_pdf", "paper_fhn", "fhn_table", "eos_figures", "eos_figures_compare",
                 "fhn_figure", "fhn_aggregate", "eos_table", "biostatis_table", "manifest",
                 "systems_ode_report"):  # fmt: skip
        assert verifies_inputs(rule), rule
    for rule in ("fhn_train", "fhn_dataset", "eos_train", "eos_landscape"):
        assert not verifies_inputs(rule), rule


@pytest.mark.e2e
def test_every_generated_part_is_a_final_target(tmp_path):
    """A deleted generated part is planned again: rule all lists each one beside main.pdf."""
    overlay = tmp_path / "pdf.yaml"
    overlay.write_text(
        yaml.safe_dump({"results_root": str(tmp_path / "results"), "paper": {"build_pdf": True}})
    )
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), "-s", "workflow/Snakefile",
         "--cores", "2", "-n", "--forceall", *QUICK, str(overlay)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OTGAP_JOB_DETAILS": "1"},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    block = re.search(r"rule all:\n\s+input: (.*)\n", out).group(1).split(", ")
    for name in ("generated/fhn_macros.tex", "generated/fhn_table.tex", "generated/eos_macros.tex",
                 "generated/compare_table.tex", "paper/main.pdf"):  # fmt: skip
        assert any(path.endswith(name) for path in block), name


@pytest.mark.e2e
def test_the_workflow_records_what_a_paper_rule_wrote(tmp_path):
    """A real job (rule paper_settings, one local job) leaves the record that the consumers check;
    an edit of the part afterwards is caught with the producing rule named."""
    import hashlib

    from otgap.jobs import ChangedInput, verify_inputs

    overlay = tmp_path / "o.yaml"
    overlay.write_text(
        yaml.safe_dump({"results_root": str(tmp_path / "res"), "logs_root": str(tmp_path / "logs")})
    )
    part = tmp_path / "res" / "quick" / "paper" / "generated" / "settings_macros.tex"
    proc = snakemake(str(part), *QUICK, str(overlay))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    record = tmp_path / "res/quick/.sha256/paper/generated/settings_macros.tex.sha256"
    assert record.read_text().split() == [
        hashlib.sha256(part.read_bytes()).hexdigest(),
        "paper_settings",
    ]
    assert verify_inputs([str(part)], tmp_path / "res" / "quick") == 1
    part.write_text(part.read_text() + "% edited\n")
    with pytest.raises(ChangedInput, match="--forcerun paper_settings"):
        verify_inputs([str(part)], tmp_path / "res" / "quick")


# ---- 4. one config checker: python -m otgap.config == Snakemake's start-up ------------------

PARITY = {  # overlay text, what both messages must name
    "run_dotdot": ('run: ".."\n', "run"),
    "compare_run_dotdot": ('paper: {compare_run: ".."}\n', "paper.compare_run"),
    "lr_nan": ("fhn: {train: {lr: .nan}}\n", "fhn.train.lr"),
    "jitter_inf": (
        "fhn:\n  conditions:\n    - {name: a, jitter: .inf, obs_fraction: 1}\n",
        "fhn.conditions[0].jitter",
    ),
    "unknown_model": ("fhn: {models: [nope]}\n", "fhn.models"),
    "optimizer_typo": (
        "eos:\n  optimizers:\n    - {name: sgdd, lrs: [0.1], steps: 2}\n",
        "eos.optimizers",
    ),
    "eig_every_weekly": ("eos: {eig_every: weekly}\n", "eos.eig_every"),
    "epochs_huge": ("fhn: {train: {epochs: 1000000000000000000000}}\n", "fhn.train.epochs"),
    "results_in_src": ("results_root: .\nrun: src\n", "results_root"),
}


def _config_cli(*files: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otgap.config", "config/config.yaml", "config/quick.yaml", *files],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize("case", list(PARITY))
def test_config_command_and_snakemake_reject_the_same_overlays(tmp_path, case):
    text, key = PARITY[case]
    path = _overlay_text(tmp_path, text)
    cli = _config_cli(str(path))
    assert cli.returncode == 2 and f"  {key}" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr and cli.stdout == ""
    smk = snakemake("-n", *QUICK, str(path))
    out = smk.stdout + smk.stderr
    assert smk.returncode != 0 and f"  {key}" in out, out[-2000:]
    assert "Building DAG" not in out


@pytest.mark.e2e
def test_config_command_and_snakemake_reject_a_yaml_syntax_error(tmp_path):
    path = _overlay_text(tmp_path, "fhn: {train: {epochs: [1\n")
    cli = _config_cli(str(path))
    assert cli.returncode == 2 and f"{path}, line 2" in cli.stderr and "Traceback" not in cli.stderr
    assert snakemake("-n", *QUICK, str(path)).returncode != 0


def test_config_command_accepts_the_shipped_configs():
    for name in SHIPPED:
        assert _config_cli(f"config/{name}.yaml").returncode == 0, name


def test_check_config_runs_the_registry_and_value_checks(quick_config):
    cfg = copy.deepcopy(quick_config)
    cfg["eos"]["optimizers"] = [{"name": "sgdd", "lrs": [0.1], "steps": 2}]
    with pytest.raises(
        ConfigError, match=r"eos.optimizers: unknown optimizer name\(s\) \['sgdd'\]"
    ):
        check_config(cfg)
    cfg = copy.deepcopy(quick_config)
    cfg["eos"]["model_hyper"] = {"mlp": {"hidden": [0]}}
    with pytest.raises(ConfigError, match="eos.model_hyper.mlp"):
        check_config(cfg)


def test_one_of_and_enum_messages_say_what_is_allowed(quick_config, tmp_path):
    msg = _schema_error(quick_config, tmp_path, "eos: {eig_every: weekly}\n")
    assert "eos.eig_every: 'weekly' is not allowed; allowed: an integer >= 1 or 'epoch'" in msg
    msg = _schema_error(quick_config, tmp_path, "eos: {device: gpu}\n")
    assert "eos.device: 'gpu' is not allowed; allowed: 'auto', 'cpu', 'cuda'" in msg
    msg = _schema_error(quick_config, tmp_path, "paper: {build_pdf: maybe}\n")
    assert "allowed: true or false or 'auto'" in msg


def test_a_boolean_given_as_text_points_to_the_working_form(quick_config, tmp_path):
    """Snakemake reads a nested --config value as text: paper='{build_pdf: false}' gives
    'false'. The message says so and names the documentation of the form that works."""
    msg = _schema_error(quick_config, tmp_path, 'paper: {build_pdf: "false"}\n')
    assert "--configfile overlay" in msg and "docs/config_checks.md" in msg
    assert "--configfile" in (REPO / "docs" / "config_checks.md").read_text()


@pytest.mark.e2e
def test_a_nested_config_boolean_on_the_command_line_is_explained(tmp_path):
    proc = snakemake(
        "-n", *QUICK, "--config", "paper={build_pdf: false}", f"results_root={tmp_path}"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "paper.build_pdf" in out and "--configfile overlay" in out


# ---- 5. command-line entries: one message, exit status 2 ------------------------------------


def test_config_command_unknown_model_is_one_message_not_a_traceback(tmp_path):
    """Under `python -m` the module is imported twice; the error is still caught."""
    path = _overlay_text(tmp_path, "fhn: {models: [nope]}\n")
    proc = _config_cli(str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: invalid configuration") and "fhn.models" in proc.stderr


def test_plan_command_bad_config_is_one_message_with_status_2(tmp_path, capsys):
    from otgap import plan

    path = _overlay_text(tmp_path, 'run: ".."\n')
    assert plan.main(["--configfile", str(path)]) == 2
    err = capsys.readouterr().err
    assert "run: '..' is not a folder name" in err and "Traceback" not in err
    assert plan.main(["--configfile", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_plan_command_through_python_m_has_no_traceback(tmp_path):
    path = _overlay_text(tmp_path, "fhn: {train: {lr: .nan}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "otgap.plan", "--configfile", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "fhn.train.lr" in proc.stderr and "Traceback" not in proc.stderr


def test_manifest_command_bad_input_is_status_2(tmp_path, capsys):
    from otgap.manifest import main

    assert main(["write", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "bad.tsv").write_text("not a manifest\n")
    assert main(["compare", str(tmp_path / "bad.tsv"), str(tmp_path / "bad.tsv")]) == 2
    assert "bad.tsv', line 1" in capsys.readouterr().err


@pytest.mark.e2e
def test_snakemake_rejects_run_dotdot_before_any_job(tmp_path):
    """The issue's reproduction: run '..' made the repository the results root."""
    path = _overlay_text(tmp_path, 'run: ".."\n')
    proc = snakemake("fhn_all", "--until", "fhn_lyapunov", *QUICK, str(path))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "run: '..' is not a folder name" in out
    assert not (REPO / "data").exists() and not (REPO / "benchmarks" / "data").exists()
