"""Configuration checking: JSON-Schema validation with defaults and messages that name the key.

The workflow calls ``validate_config`` when it starts, so an unknown key, a wrong type or an
out-of-range value stops the run before any job is scheduled, with a message such as::

    invalid configuration: fhn.conditions[1].obs_fraction: 1.5 is greater than the maximum of 1
"""

from __future__ import annotations

import copy
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


def validate_config(config: dict, schema: Mapping | str | Path) -> dict:
    """Validate ``config`` in place, filling defaults; raise ConfigError naming every bad key."""
    if not isinstance(schema, Mapping):
        schema = load_schema(schema)
    errors = sorted(
        _DefaultFiller(schema).iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        lines = []
        for err in errors:
            where = key_path(err.absolute_path)
            msg = err.message
            if err.validator == "additionalProperties":
                msg = f"{msg} (check the spelling; allowed keys are listed in the schema)"
            lines.append(f"  {where}: {msg}")
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


def main(argv: list[str] | None = None) -> int:
    """``python -m otgap.config FILE...``: check config files as the workflow would, naming the
    file and line of a YAML error (Snakemake's own reader of ``--configfile`` does not)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m otgap.config", description=main.__doc__)
    parser.add_argument("files", nargs="+", help="config files, later ones overriding earlier")
    parser.add_argument(
        "--schema",
        default=str(Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml"),
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(*args.files, schema=args.schema)
        from otgap.startup_checks import check_values

        check_values(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {' + '.join(args.files)}")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    raise SystemExit(main())
