"""Activation functions by config name, shared by the classifier families."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module for ``name``; an unknown name is an error listing the known ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()
