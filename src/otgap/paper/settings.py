"""Macros of the two runs' settings (this config and the original-settings config), so the prose
can state learning rates, epochs and thresholds without typing a number by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otgap.paper.macros import MacroSet
from otgap.paper.numbers import format_setting, format_value
from otgap.tables.latex import tex_escape


def _get(cfg: Mapping[str, Any] | None, *keys: str) -> Any:
    node: Any = cfg
    for k in keys:
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    return node


def _optimizer(cfg: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    for entry in _get(cfg, "eos", "optimizers") or []:
        if entry.get("name") == name:
            return entry
    return None


def _num(value: Any) -> str | None:
    return None if value is None else format_setting(value)


def settings_macros(cfg: Mapping[str, Any] | None, prefix: str) -> MacroSet:
    """Settings of one run as macros ``\\<prefix>...``; n/a for what the config lacks."""
    ms = MacroSet(prefix=prefix)
    ms.add("Run", tex_escape(_get(cfg, "run")) if cfg else None, "run name")
    ms.add("FhnEpochs", _num(_get(cfg, "fhn", "train", "epochs")), "A.1 training epochs")
    tuning = _get(cfg, "fhn", "train", "tuning") or {}
    fhn_lr = _num(_get(cfg, "fhn", "train", "lr"))
    if tuning.get("enabled"):  # chosen per learned model and cell on validation data
        grid = ", ".join(format_setting(x) for x in tuning.get("lr_grid", []))
        fhn_lr = f"chosen per model and condition on validation data (grid {grid})"
    elif fhn_lr is not None:
        fhn_lr = f"{fhn_lr} (one for every learned model, not tuned)"
    ms.add("FhnLr", fhn_lr, "A.1 Adam learning rate (or how it is chosen)")
    ms.add("FhnHidden", _num(_get(cfg, "fhn", "train", "hidden")), "A.1 hidden units")
    ms.add("FhnTrainSeqs", _num(_get(cfg, "fhn", "dataset", "n_train")), "A.1 training sequences")
    seeds = _get(cfg, "fhn", "seeds")
    ms.add("FhnNSeeds", None if seeds is None else str(len(seeds)), "A.1 seeds")
    conds = _get(cfg, "fhn", "conditions")
    ms.add(
        "FhnConditions",
        None if conds is None else tex_escape(", ".join(c["name"] for c in conds)),
        "A.1 sampling conditions",
    )
    ms.add(
        "EosDatasets",
        None
        if _get(cfg, "eos", "datasets") is None
        else tex_escape(", ".join(_get(cfg, "eos", "datasets"))),
        "A.2 datasets",
    )
    sgd = _optimizer(cfg, "sgd")
    lr = (sgd or {}).get("lrs", [None])[0]
    ms.add("EosSgdLr", _num(lr), "A.2 SGD learning rate")
    ms.add(
        "EosSgdThreshold",
        None if lr is None else format_value(2 / float(lr), 4),
        "A.2 SGD stability threshold 2/lr",
    )
    ms.add("EosSgdEpochs", _num((sgd or {}).get("epochs")), "A.2 SGD epochs")
    ms.add("EosSgdBatch", _num((sgd or {}).get("batch_size")), "A.2 SGD batch size")
    ms.add("EosEigSubset", _num(_get(cfg, "eos", "eig_subset")), "A.2 samples for the sharpness")
    ms.add(
        "EosEigMethod",
        tex_escape(_get(cfg, "eos", "eig_method") or "lanczos") if cfg else None,
        "A.2 eigenvalue method",
    )
    return ms
