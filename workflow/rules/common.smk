# Helpers shared by every rule file: config validation, paths, resources, source dependencies.
from pathlib import Path

from otgap.config import (
    ConfigError,
    canonicalise_in_place,
    check_config,
    read_yaml,
    stage_resources,
)
from otgap.deps import source_dependencies
from otgap.io import OutputError, check_writable_dir

REPO = Path(workflow.basedir).parent
IN_REPO = Path.cwd().resolve() == REPO.resolve()
SRC = REPO / "src"

try:
    # Snakemake's YAML reader merges a key given twice; read every config file again strictly
    for _configfile in workflow.configfiles:
        read_yaml(_configfile)
    # schema, finite numbers, the run's folders, registry names, values: the same function as
    # `python -m otgap.config` (one checker)
    check_config(
        config, Path(workflow.basedir) / "schemas" / "config.schema.yaml", REPO
    )
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
# key order in the YAML files must not matter to the params rerun trigger
canonicalise_in_place(config)

R = f"{config['results_root']}/{config['run']}"
L = f"{config['logs_root']}/{config['run']}"
# Checkpoints for resume live outside the declared outputs (Snakemake deletes those before a job).
CKPT = f"{R}/.checkpoints"

try:
    check_writable_dir(R)
    check_writable_dir(L)
except OutputError as exc:
    raise WorkflowError(str(exc)) from None


def scaled_by_attempt(minutes):
    """A runtime that grows with the attempt: a job killed at its time limit gets twice the time
    on its first retry (three times on the second), so `retries` never resubmits a request that
    already proved too short."""

    def runtime(wildcards, attempt):
        return minutes * attempt

    return runtime


def res(stage):
    """Resources of a stage from config['resources'] (gpu only when asked for, so CPU runs stay CPU)."""
    r = stage_resources(config, stage)
    out = {"mem_mb": r["mem_mb"], "runtime": scaled_by_attempt(r["runtime"])}
    if r["gpu"] > 0:
        out["gpu"] = r["gpu"]
    return out


def threads_for(stage):
    return stage_resources(config, stage)["threads"]


def src_deps(*roots, follow_registries=True):
    """The scripts among ``roots`` and the library files that ``roots`` (scripts or otgap module
    names) import, transitively.

    Rules list these files as inputs, and the profiles leave `code` out of the rerun triggers:
    Snakemake then reruns a job when one of them changed in CONTENT (an input newer than the
    outputs whose checksum matches the recorded one is ignored), not when it was merely touched
    or checked out again. Editing one module reruns exactly the jobs whose scripts import it (and
    whatever depends on their outputs). See otgap.deps for what counts as an import.
    """
    try:
        modules = source_dependencies(REPO, *roots, follow_registries=follow_registries)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None
    return sorted(
        map(repo_path, {r for r in roots if r.endswith(".py")} | set(modules))
    )


def repo_path(path):
    """A repository file as a rule input: relative when the run's working directory is the
    repository (the paths every earlier run recorded), absolute otherwise (`--directory`).
    """
    return str(path) if IN_REPO else str(REPO / path)


def script_inputs(script, **extra):
    """Named inputs for a rule: the library modules its script imports (key 'code') plus ``extra``."""
    return {"code": src_deps(script), **extra}


# ---- FitzHugh-Nagumo data (data.smk) -------------------------------------------------------
FHN = config["fhn"]
FHN_CONDITIONS = {c["name"]: c for c in FHN["conditions"]}
if len(FHN_CONDITIONS) != len(FHN["conditions"]):
    raise WorkflowError("fhn.conditions: condition names must be unique")

_cond_pattern = "|".join(sorted(FHN_CONDITIONS))
_system_pattern = "|".join(sorted(FHN["systems"]))


def fhn_dataset_path(system, condition, seed):
    return f"{R}/data/fhn/system={system}/condition={condition}/seed={seed}/dataset.npz"


def fhn_system_conditions(system):
    """Condition names run for ``system`` (fhn.system_conditions, default: every condition)."""
    names = FHN.get("system_conditions", {}).get(system) or list(FHN_CONDITIONS)
    unknown = sorted(set(names) - set(FHN_CONDITIONS))
    if unknown:
        raise WorkflowError(
            f"fhn.system_conditions.{system}: unknown condition(s) {unknown}; "
            f"known: {sorted(FHN_CONDITIONS)}"
        )
    return [c for c in FHN_CONDITIONS if c in names]


def fhn_data_targets():
    return [
        fhn_dataset_path(s, c, seed)
        for s in FHN["systems"]
        for c in fhn_system_conditions(s)
        for seed in FHN["seeds"]
    ]


def fhn_system_params(wildcards):
    return dict(FHN.get("system_params", {}).get(wildcards.system, {}))


def fhn_condition(wildcards):
    return dict(FHN_CONDITIONS[wildcards.condition])


def systems_targets():
    """Final artifacts of the other systems (rules/systems_*.smk) that this config builds."""
    return [
        # the Landau network: Landau nets (systems_landau.smk)
        *systems_landau_targets(),
        *biostatis_targets(),  # BiostatisV6 vs AdamW (systems_biostatis.smk)
        *biostatis_cifar_targets(),
        *systems_ode_targets(),  # the ODE-solving networks: networks that solve known ODEs (systems_ode.smk)
    ]


def all_targets():
    """Every final artifact: figures, tables and the paper."""
    return [
        *fhn_data_targets(),
        *fhn_targets(),
        *eos_train_targets(),
        *eos_analysis_targets(),
        *systems_targets(),
        # the paper (rules/paper.smk): main.pdf, or its generated parts when auto skips the PDF
        *paper_targets(),
        *manifest_targets(),
    ]


# ---- systems: ODE-solving networks (systems_ode.smk) -----------------------------------------
def systems_ode_targets():
    ode = config.get("systems", {}).get("ode_solver", {})
    root = f"{R}/systems/ode_solver"
    out = []
    if ode.get("problems"):
        out += [
            f"{root}/{name}"
            for name in ("errors.csv", "errors.tex", "figure.pdf", "figure.png")
        ]
    if ode.get("a1_reference", {}).get("enabled", False):
        # the per-(system, seed) references are its inputs
        out += [f"{root}/a1_reference/table.csv", f"{root}/a1_reference/table.tex"]
    return out


# ---- console: one line per job ---------------------------------------------------------------
JOB_DETAILS_ENV = "OTGAP_JOB_DETAILS"


def set_job_messages():
    """Give every rule without its own ``message`` one that names the rule and its wildcards.

    Snakemake prints a job with a message as ``Job <id>: <message>`` instead of listing every
    input (each rule lists the library modules its script imports, about 20 files), so a run
    prints one line per job. ``OTGAP_JOB_DETAILS=1`` keeps Snakemake's full listing (inputs,
    outputs, benchmark, threads, resources), which otgap.plan reads from its dry runs.
    """
    import os
    import re

    if os.environ.get(JOB_DETAILS_ENV) == "1":
        return

    for rule_ in workflow.rules:
        if rule_.message:
            continue
        order = []
        for pattern in map(str, rule_.output):
            for name in re.findall(r"{\s*(\w+)", pattern):
                if name not in order:
                    order.append(name)
        order += sorted(set(rule_.wildcard_names) - set(order))
        wildcards = ", ".join(f"{w}={{wildcards.{w}}}" for w in order)
        rule_.message = f"{rule_.name}" + (f" ({wildcards})" if wildcards else "")
        if rule_.log:  # progress of a long job: `tail -f` this file
            rule_.message += " log: {log}"


# ---- cluster runs ----------------------------------------------------------------------------
def check_remote_cores():
    """A cluster run (executor other than local) caps every rule's threads at ``--cores``. The
    SLURM profile sets no cores; a value there comes from profiles/default (`cores: all`, the login
    node's cores), loaded on top when `--workflow-profile none` is forgotten. Stop before any
    submission when that cap would shrink a configured stage, and name the fix."""
    if workflow.local_exec or not workflow.is_main_process:  # known once the run starts
        return
    cores = workflow.resource_settings.cores
    if cores is None:
        return
    capped = sorted(
        f"{stage} (threads {r['threads']})"
        for stage, r in ((s, stage_resources(config, s)) for s in config["resources"])
        if r["threads"] > cores
    )
    if capped:
        raise WorkflowError(
            f"--cores {cores} with executor '{workflow.executor_plugin.name}' would cap the "
            f"threads of every cluster job at {cores}: {', '.join(capped)}. On a cluster run, "
            "add `--workflow-profile none` (profiles/default sets `cores: all`; docs/cluster.md) "
            "or give --cores at least the largest stage's threads."
        )
