"""Configuration checking: JSON-Schema validation with defaults and messages that name the key.

The workflow calls ``validate_config`` when it starts, so an unknown key, a wrong type or an
out-of-range value stops the run before any job is scheduled, with a message such as::

    invalid configuration: fhn.conditions[1].obs_fraction: 1.5 is greater than the maximum of 1
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The configuration does not satisfy the schema."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""


def _strict_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            first = seen[key].start_mark
            raise yaml.constructor.ConstructorError(
                f"while reading a mapping (line {first.line + 1})",
                node.start_mark,
                f"duplicate key {key!r} (first given on line {first.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file strictly: a duplicate key or a syntax error is a ConfigError that names
    the file and the line (1-based)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{p}': {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{p}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(p)
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise ConfigError(f"config file {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p}: {exc}") from None


def key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _extend_with_defaults(validator_class):
    """A validator that fills in the schema's defaults while it validates (jsonschema FAQ pattern)."""
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _is_integer(checker, instance) -> bool:  # noqa: ARG001 - jsonschema's signature
    """Integers only: JSON Schema counts 1.0 as an integer, but a job cannot use seed=1.0."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_StrictIntegers = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
_DefaultFiller = _extend_with_defaults(_StrictIntegers)


def load_schema(path: str | Path) -> dict:
    return read_yaml(path)


# Names that become one folder of a path (run, paper.compare_run, ...): never '.', '..', a hidden
# or dot-only name, an option-like '-x' or anything with a '/'. The schema's definitions/path_name.
PATH_NAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
# docs/config_checks.md: how to give nested values on the command line
CONFIG_DOC = "docs/config_checks.md"


def _describe(schema: Any) -> str:
    """What a (small) subschema allows, in words: 'an integer >= 1', "'epoch'", 'true or false'."""
    if not isinstance(schema, Mapping):
        return "anything"
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        values = [repr(v) for v in schema["enum"]]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    kind = schema.get("type")
    words = {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true or false",
        "null": "null",
        "array": "a list",
        "object": "a mapping",
    }
    if isinstance(kind, list):
        text = " or ".join(words.get(k, k) for k in kind)
    else:
        text = words.get(kind, "a value")
    bounds = [
        (f">= {schema['minimum']}" if "minimum" in schema else ""),
        (f"> {schema['exclusiveMinimum']}" if "exclusiveMinimum" in schema else ""),
        (f"<= {schema['maximum']}" if "maximum" in schema else ""),
        (f"< {schema['exclusiveMaximum']}" if "exclusiveMaximum" in schema else ""),
    ]
    bounds = [b for b in bounds if b]
    return f"{text} {' and '.join(bounds)}" if bounds else text


def _text_of_type(instance: Any, wanted: Any) -> bool:
    """True when ``instance`` is a string whose YAML reading has a wanted type ('false', '5'):
    what a nested ``--config key='{a: false}'`` value becomes (Snakemake reads it as text)."""
    if not isinstance(instance, str):
        return False
    try:
        value = yaml.safe_load(instance)
    except yaml.YAMLError:
        return False
    kinds = set(wanted if isinstance(wanted, list) else [wanted])
    return (
        (isinstance(value, bool) and "boolean" in kinds)
        or (
            isinstance(value, int) and not isinstance(value, bool) and kinds & {"integer", "number"}
        )
        or (isinstance(value, float) and "number" in kinds)
    )


def _message(err: jsonschema.ValidationError) -> str:
    msg = err.message
    if err.validator == "additionalProperties":
        msg = f"{msg} (check the spelling; allowed keys are listed in the schema)"
    elif err.validator == "pattern" and err.validator_value == PATH_NAME_PATTERN:
        msg = (
            f"{err.instance!r} is not a folder name: letters, digits, '_', '.' and '-', starting "
            "with a letter, a digit or '_' (never '.', '..', a hidden name or a path)"
        )
    elif err.validator in ("oneOf", "anyOf"):
        allowed = " or ".join(_describe(s) for s in err.validator_value)
        msg = f"{err.instance!r} is not allowed; allowed: {allowed}"
    elif err.validator == "enum":
        allowed = ", ".join(repr(v) for v in err.validator_value)
        msg = f"{err.instance!r} is not allowed; allowed: {allowed}"
    wanted = err.validator_value if err.validator == "type" else None
    if err.validator in ("oneOf", "anyOf"):
        wanted = [s.get("type") for s in err.validator_value if isinstance(s, Mapping)]
    if wanted is not None and _text_of_type(err.instance, wanted):
        msg += (
            " (a text that reads as another type: a nested --config value arrives as text; "
            f"give it in a --configfile overlay instead, see {CONFIG_DOC})"
        )
    return msg


def non_finite(config: Any, path: tuple = ()) -> list[str]:
    """Key paths of every NaN or infinite number in ``config`` (YAML .nan, .inf, -.inf)."""
    if isinstance(config, float):
        return (
            []
            if math.isfinite(config)
            else [f"  {key_path(path)}: {config!r} is not a finite number"]
        )
    if isinstance(config, Mapping):
        return [p for k, v in config.items() for p in non_finite(v, (*path, k))]
    if isinstance(config, list):
        return [p for i, v in enumerate(config) for p in non_finite(v, (*path, i))]
    return []


def validate_config(config: dict, schema: Mapping | str | Path) -> dict:
    """Validate ``config`` in place, filling defaults; raise ConfigError naming every bad key.

    Besides the schema, every number must be finite: JSON Schema's minimum and maximum let NaN
    through (every comparison with NaN is false), so one pass over the merged config names each
    NaN or infinity by its key path."""
    if not isinstance(schema, Mapping):
        schema = load_schema(schema)
    errors = sorted(
        _DefaultFiller(schema).iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]
    )
    lines = [f"  {key_path(err.absolute_path)}: {_message(err)}" for err in errors]
    lines += non_finite(config)
    if lines:
        raise ConfigError(
            "invalid configuration (see workflow/schemas/config.schema.yaml):\n" + "\n".join(lines)
        )
    return config


def canonical(obj: Any) -> Any:
    """The same data with every mapping's keys sorted (recursively).

    Snakemake's params trigger compares a job's params as text, so two configs that differ only in
    key order would rerun jobs. The workflow canonicalises the config once at start-up.
    """
    if isinstance(obj, Mapping):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def canonicalise_in_place(config: dict) -> dict:
    """Sort ``config``'s keys recursively, keeping the top-level object (Snakemake's global)."""
    items = canonical(config)
    config.clear()
    config.update(items)
    return config


def merge(base: dict, overlay: Mapping) -> dict:
    """Merge like Snakemake's --configfile overlay: dicts key by key, everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(*paths: str | Path, schema: str | Path | None = None) -> dict:
    """Load and merge YAML files in order (later overrides earlier); validate if a schema is given."""
    config: dict[str, Any] = {}
    for p in paths:
        config = merge(config, read_yaml(p) or {})
    if schema is not None:
        validate_config(config, schema)
    return config


def stage_resources(config: Mapping, stage: str) -> dict[str, int]:
    """Resources of ``stage`` with the 'default' entry filling missing keys."""
    res = dict(config.get("resources", {}).get("default", {}))
    res.update(config.get("resources", {}).get(stage, {}))
    base = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0}
    base.update(res)
    return base


def fhn_system_train(train: Mapping, system: str) -> dict[str, dict[str, dict]]:
    """The per-model ``model_kwargs`` and ``overrides`` of ``fhn.train`` for the cells of
    ``system``: the system's ``system_overrides`` entry merged over the global ones, key by key
    within each model (a system without an entry gets the global ones unchanged)."""
    own = dict(train.get("system_overrides", {}).get(system) or {})
    out = {}
    for part in ("model_kwargs", "overrides"):
        merged = {name: dict(kw) for name, kw in dict(train.get(part, {})).items()}
        for name, kw in dict(own.get(part, {})).items():
            merged[name] = {**merged.get(name, {}), **dict(kw)}
        out[part] = merged
    return out


REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def check_config(
    config: dict, schema: Mapping | str | Path = SCHEMA, repo: str | Path = REPO
) -> dict:
    """Every start-up check of a merged config, in the order the workflow runs them: the schema
    (filling defaults) and finite numbers, the run's folders (otgap.paths.run_roots), the
    registry names and the values the jobs would use (otgap.startup_checks.check_values).

    ``workflow/rules/common.smk`` and ``python -m otgap.config`` both call this, so they accept
    and reject the same configs. Raises ConfigError naming the key path of each problem."""
    from otgap.paths import run_roots

    validate_config(config, schema)
    run_roots(config, repo)
    from otgap.startup_checks import check_values

    check_values(config)
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m otgap.config FILE...``: check config files with the workflow's start-up checks
    (strict YAML naming the file and line of an error, schema, finite numbers, the run's folders,
    registry names, values). Exit status 0 when they pass, 2 with one message when not."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m otgap.config", description=main.__doc__)
    parser.add_argument("files", nargs="+", help="config files, later ones overriding earlier")
    parser.add_argument("--schema", default=str(SCHEMA))
    args = parser.parse_args(argv)
    try:
        check_config(load_config(*args.files), args.schema)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {' + '.join(args.files)}")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    # Run the imported module's main, not this copy's: under `python -m` this file is also
    # `__main__`, whose ConfigError is another class than the one otgap.startup_checks raises.
    from otgap.config import main as _main

    raise SystemExit(_main())
