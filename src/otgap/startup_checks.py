"""Start-up checks of the configuration's VALUES: build what the jobs would build, before any job.

The schema checks shapes and ranges; it cannot know that ``activation: tanhh`` names no activation,
that Adam rejects ``beta1: 1.5`` or that a model cannot be built with ``hidden: [0]``. The workflow
therefore builds every configured model on a tiny dummy input and every configured optimizer on a
dummy parameter with the configuration's values when it starts, and reports every failure with
the key path that holds the bad value. The checks are generic over the registries
(``SEQUENCE_MODELS``, ``CLASSIFIERS``, ``OPTIMIZERS``), so a model or optimizer added later is
covered without new code here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from otgap.config import ConfigError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _check_outputs(out: Any, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} gives output shape {got}, expected {shape}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{what} gives non-finite outputs on a dummy input")


def _check_parameters(model: torch.nn.Module) -> None:
    empty = [name for name, p in model.named_parameters() if p.numel() == 0]
    if empty:
        raise ValueError(f"parameter(s) {empty} have no elements")


def check_sequence_models(fhn: Mapping[str, Any]) -> list[str]:
    """Build each of ``fhn.models`` with ``fhn.train.hidden`` and its ``fhn.train.model_kwargs``
    (and again with each system's ``system_overrides`` keywords where it has its own) and run it on
    a two-sample, six-point dummy batch."""
    from otgap.config import fhn_system_train
    from otgap.models.sequence import SEQUENCE_MODELS

    train = fhn.get("train", {})
    problems = []
    gen = torch.Generator().manual_seed(0)
    t = torch.cumsum(0.1 + torch.rand(2, 6, generator=gen, dtype=torch.float64), dim=1)
    y = torch.randn(2, 6, 2, generator=gen)
    obs = torch.ones(2, 6, dtype=torch.bool)
    variants = [("fhn.train.model_kwargs", train.get("model_kwargs", {}), {})]
    for system, own in dict(train.get("system_overrides", {})).items():
        own_kwargs = dict((own or {}).get("model_kwargs", {}))
        if own_kwargs:
            where = f"fhn.train.system_overrides.{system}.model_kwargs"
            merged = fhn_system_train(train, system)["model_kwargs"]
            variants.append((where, merged, own_kwargs))
    for prefix, all_kwargs, only in variants:
        for name in fhn.get("models", []):
            if only and name not in only:
                continue
            kwargs = {"hidden": train.get("hidden"), **dict(all_kwargs.get(name, {}))}
            where = f"{prefix}.{name}" if name in all_kwargs else "fhn.train.hidden"
            try:
                model = SEQUENCE_MODELS[name](**kwargs)
                _check_parameters(model)
                model.prepare(t, y, obs)
                with torch.no_grad():
                    _check_outputs(model(t, y, obs), (2, 6, 2), f"model '{name}'")
            except Exception as exc:
                problems.append(
                    f"  {where}: model '{name}' (fhn.models) cannot be built/run with {kwargs}: "
                    f"{_first_line(exc)}"
                )
    return problems


def _input_shape(dataset: str, size: int) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of an EoS data set, without loading it."""
    if dataset == "digits":
        return (1, 8, 8), 10
    import medmnist

    info = medmnist.INFO[dataset]
    return (int(info["n_channels"]), int(size), int(size)), len(info["label"])


def check_classifiers(eos: Mapping[str, Any]) -> list[str]:
    """Build each of ``eos.models`` with its ``eos.model_hyper`` for every configured data set's
    input shape and run forward and backward on two dummy samples."""
    from otgap.models.classifiers import CLASSIFIERS

    problems = []
    shapes = {}
    for d in eos.get("datasets", []):
        try:
            shapes[d] = _input_shape(d, eos.get("size", 28))
        except KeyError:
            problems.append(f"  eos.datasets: '{d}' is neither 'digits' nor a MedMNIST flag")
    for name in eos.get("models", []):
        hyper = dict(eos.get("model_hyper", {}).get(name, {}))
        where = f"eos.model_hyper.{name}" if hyper else "eos.models"
        for d, (shape, n_classes) in shapes.items():
            try:
                model = CLASSIFIERS[name](shape, n_classes, **hyper)
                _check_parameters(model)
                x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
                out = model(x)
                _check_outputs(out.detach(), (2, n_classes), f"model '{name}'")
                out.pow(2).sum().backward()
            except Exception as exc:
                problems.append(
                    f"  {where}: model '{name}' cannot be built/run for data set '{d}' with "
                    f"{hyper}: {_first_line(exc)}"
                )
                break
    return problems


def check_optimizers(eos: Mapping[str, Any]) -> list[str]:
    """Build each ``eos.optimizers[i]`` on a dummy parameter with each of its lrs and its hyper,
    take one step, and compute its stability threshold."""
    from otgap.optim import OPTIMIZERS

    problems = []
    for i, entry in enumerate(eos.get("optimizers", [])):
        name, hyper = entry.get("name"), dict(entry.get("hyper", {}))
        if name not in OPTIMIZERS:
            continue  # reported by the registry-name check
        spec = OPTIMIZERS[name]
        for j, lr in enumerate(entry.get("lrs", [])):
            where = f"eos.optimizers[{i}].lrs[{j}]"
            if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr):
                problems.append(f"  {where}: learning rate {lr!r} is not a finite number")
                continue
            if not lr > 0:
                problems.append(f"  {where}: learning rate {lr!r} must be positive")
                continue
            try:
                param = torch.nn.Parameter(torch.ones(3))
                optimizer = spec.build([param], lr, **hyper)
                param.grad = torch.full_like(param, 0.5)
                optimizer.step()
                spec.threshold(lr, **spec.hyper(**hyper))
                if not bool(torch.isfinite(param).all()):
                    raise ValueError("one step on a dummy parameter gives non-finite values")
            except Exception as exc:
                key = f"eos.optimizers[{i}].hyper" if hyper else where
                problems.append(
                    f"  {key}: optimizer '{name}' cannot be built with lr={lr} and hyper "
                    f"{hyper}: {_first_line(exc)}"
                )
                break
    return problems


def check_registry_names(config: Mapping[str, Any]) -> list[str]:
    """Model and optimizer names that are not in their registries (``fhn.models``,
    ``eos.models``, ``eos.optimizers[].name``), with the names that are."""
    from otgap.models.classifiers import CLASSIFIERS
    from otgap.models.sequence import SEQUENCE_MODELS
    from otgap.optim import OPTIMIZERS

    fhn, eos = config.get("fhn", {}), config.get("eos", {})
    checks = [
        ("fhn.models", fhn.get("models", []), SEQUENCE_MODELS),
        ("eos.models", eos.get("models", []), CLASSIFIERS),
        ("eos.optimizers", [o.get("name") for o in eos.get("optimizers", [])], OPTIMIZERS),
    ]
    problems = []
    for key, names, registry in checks:
        unknown = [n for n in names if n not in registry]
        if unknown:
            problems.append(
                f"  {key}: unknown {registry.kind} name(s) {unknown}; known: {sorted(registry)}"
            )
    return problems


CHECKS: tuple[tuple[str, Callable[[Mapping[str, Any]], list[str]]], ...] = (
    ("fhn", check_sequence_models),
    ("eos", check_classifiers),
    ("eos", check_optimizers),
)


def check_values(config: Mapping[str, Any]) -> None:
    """Run every check; raise ``ConfigError`` listing each failure with its key path (unknown
    registry names alone when there are any: the builds would only repeat them)."""
    names = check_registry_names(config)
    if names:
        raise ConfigError("invalid configuration:\n" + "\n".join(names))
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problems = [p for section, check in CHECKS for p in check(config.get(section, {}))]
    finally:
        torch.set_num_threads(torch_threads)
    if problems:
        raise ConfigError(
            "invalid configuration (values that the jobs could not use):\n" + "\n".join(problems)
        )
