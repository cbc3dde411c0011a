# Helpers shared by every rule file: config validation, paths, resources, source dependencies.
from pathlib import Path

from otgap.config import (
    ConfigError,
    canonicalise_in_place,
    stage_resources,
    validate_config,
)
from otgap.deps import source_dependencies
from otgap.io import OutputError, ensure_writable_dir

REPO = Path(workflow.basedir).parent
SRC = REPO / "src"

try:
    validate_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
# key order in the YAML files must not matter to the params rerun trigger
canonicalise_in_place(config)


def check_registry_names():
    """Model and optimizer names must exist in the registries: fail before any job otherwise."""
    from otgap.models.classifiers import CLASSIFIERS
    from otgap.models.sequence import SEQUENCE_MODELS
    from otgap.optim import OPTIMIZERS

    problems = []
    checks = [
        ("fhn.models", config["fhn"]["models"], SEQUENCE_MODELS),
        ("eos.models", config["eos"]["models"], CLASSIFIERS),
        (
            "eos.optimizers",
            [o["name"] for o in config["eos"]["optimizers"]],
            OPTIMIZERS,
        ),
    ]
    for key, names, registry in checks:
        unknown = [n for n in names if n not in registry]
        if unknown:
            problems.append(
                f"  {key}: unknown {registry.kind} name(s) {unknown}; known: {sorted(registry)}"
            )
    if problems:
        raise WorkflowError("invalid configuration:\n" + "\n".join(problems))


check_registry_names()

R = f"{config['results_root']}/{config['run']}"
L = f"{config['logs_root']}/{config['run']}"
# Checkpoints for resume live outside the declared outputs (Snakemake deletes those before a job).
CKPT = f"{R}/.checkpoints"

try:
    ensure_writable_dir(R)
    ensure_writable_dir(L)
except OutputError as exc:
    raise WorkflowError(str(exc)) from None


def res(stage):
    """Resources of a stage from config['resources'] (gpu only when asked for, so CPU runs stay CPU)."""
    r = stage_resources(config, stage)
    out = {"mem_mb": r["mem_mb"], "runtime": r["runtime"]}
    if r["gpu"] > 0:
        out["gpu"] = r["gpu"]
    return out


def threads_for(stage):
    return stage_resources(config, stage)["threads"]


def src_deps(*roots, follow_registries=True):
    """Library files that ``roots`` (scripts or otgap module names) import, transitively.

    Snakemake's code trigger sees a rule's script but not the modules it imports, so rules list
    these files as inputs: editing one module reruns exactly the jobs whose scripts import it
    (and whatever depends on their outputs). See otgap.deps for what counts as an import.
    """
    try:
        return source_dependencies(REPO, *roots, follow_registries=follow_registries)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


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


def fhn_data_targets():
    return [
        fhn_dataset_path(s, c, seed)
        for s in FHN["systems"]
        for c in FHN_CONDITIONS
        for seed in FHN["seeds"]
    ]


def fhn_system_params(wildcards):
    return dict(FHN.get("system_params", {}).get(wildcards.system, {}))


def fhn_condition(wildcards):
    return dict(FHN_CONDITIONS[wildcards.condition])


def all_targets():
    """Every final artifact: figures, tables (and, once it exists, the paper)."""
    return [
        *fhn_data_targets(),
        *fhn_targets(),
        *eos_train_targets(),
        *eos_analysis_targets(),
        *systems_ode_targets(),
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
        out += [
            f"{root}/a1_reference/system={s}/seed={seed}/{name}"
            for s in FHN["systems"]
            for seed in FHN["seeds"]
            for name in ("predictions.npz", "reference.json")
        ]
    return out
