# Helpers shared by every rule file: config validation, paths, resources, source dependencies.
import ast
import re
import sys
from pathlib import Path

from otgap.config import ConfigError, stage_resources, validate_config
from otgap.io import OutputError, ensure_writable_dir

REPO = Path(workflow.basedir).parent
SRC = REPO / "src"

try:
    validate_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None



def check_registry_names():
    """Model and optimizer names must exist in the registries: fail before any job otherwise."""
    from otgap.models.classifiers import CLASSIFIERS
    from otgap.models.sequence import SEQUENCE_MODELS
    from otgap.optim import OPTIMIZERS

    problems = []
    checks = [
        ("fhn.models", config["fhn"]["models"], SEQUENCE_MODELS),
        ("eos.models", config["eos"]["models"], CLASSIFIERS),
        ("eos.optimizers", [o["name"] for o in config["eos"]["optimizers"]], OPTIMIZERS),
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


_REGISTRY_ENTRY = re.compile(r"^(otgap(?:\.\w+)+)(?::[\w.]+)?$")
_DEPS_CACHE = {}


def _module_file(name):
    """The source file of an otgap module or package, or None if it does not exist."""
    base = SRC.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports_of(path, follow_registries):
    """otgap modules that a file imports (and, optionally, names as 'module:attr' registry entries)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif follow_registries and isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = _REGISTRY_ENTRY.match(node.value)
            if m:
                found.add(m.group(1))
    mods = set()
    for name in found:
        if name == "otgap" or name.startswith("otgap."):
            parts = name.split(".")
            # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
            for i in range(1, len(parts) + 1):
                if _module_file(".".join(parts[:i])) is not None:
                    mods.add(".".join(parts[:i]))
    return mods


def src_deps(*roots, follow_registries=True):
    """Library source files that ``roots`` (scripts or otgap module names) import, transitively.

    Snakemake's code trigger sees a rule's script but not the modules it imports, so rules list
    these files as inputs: editing one module reruns exactly the jobs whose scripts import it
    (and whatever depends on their outputs). Registry entries written as "otgap.x.y:Class" count
    as imports unless follow_registries is False, and so do strings naming an otgap module (the
    lazy imports of package __init__ files).
    """
    key = (roots, follow_registries)
    if key in _DEPS_CACHE:
        return _DEPS_CACHE[key]
    todo, files = [], set()
    for root in roots:
        p = REPO / root
        if root.endswith(".py") and p.is_file():
            todo.extend(_imports_of(p, follow_registries))
        elif _module_file(root) is not None:
            todo.append(root)
        else:
            raise WorkflowError(f"src_deps: '{root}' is neither a script nor an otgap module")
    seen = set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        f = _module_file(mod)
        if f is None:
            continue
        files.add(f)
        todo.extend(_imports_of(f, follow_registries) - seen)
    out = sorted(str(f.relative_to(REPO)) for f in files)
    _DEPS_CACHE[key] = out
    return out


def script_inputs(script, **extra):
    """Named inputs for a rule: the library modules its script imports (key 'code') plus ``extra``."""
    return {"code": src_deps(script), **extra}


def all_targets():
    """Every final artifact: figures, tables (and, once it exists, the paper)."""
    return [
        *fhn_data_targets(),
        *fhn_targets(),
        *eos_train_targets(),
        *eos_analysis_targets(),
    ]
