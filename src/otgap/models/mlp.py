"""Fully connected classifier: the paper's A.2 model and the Edge-of-Stability digits model.

The paper's network for PathMNIST is 2352-256-128-9 with ReLU (``hidden=(256, 128)``); the setup
Cohen et al. use and that this project measured on digits (docs/sources.md#edge-of-stability) is 64-200-200-10 with tanh
(``hidden=(200, 200), activation="tanh"``). Inputs of any shape are flattened, so the input width
comes from the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from otgap.models.activations import activation as make_activation


class MLP(nn.Module):
    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if not input_shape or min(input_shape) < 1:
            raise ValueError(f"MLP: input shape must be non-empty and positive, got {input_shape}")
        if n_classes < 2:
            raise ValueError(f"MLP: need at least 2 classes, got {n_classes}")
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"MLP: hidden sizes must be positive, got {list(hidden)}")
        self.input_shape = input_shape
        widths = [math.prod(input_shape), *(int(h) for h in hidden), int(n_classes)]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(widths) - 2:
                layers.append(make_activation(activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"MLP built for inputs {self.input_shape}, got {tuple(x.shape[1:])}")
        return self.net(x)
