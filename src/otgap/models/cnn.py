"""A small convolutional classifier: blocks of conv (same padding) -> activation -> 2x2 max-pool,
then one linear layer.

Each block halves the image, so the number of blocks an input allows is checked when the model is
built: 8x8 digits take at most three blocks, 28x28 MedMNIST four.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from otgap.models.activations import activation as make_activation


class SmallCNN(nn.Module):
    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(
                f"SmallCNN: input shape must be (channels, height, width), got {input_shape}"
            )
        if n_classes < 2:
            raise ValueError(f"SmallCNN: need at least 2 classes, got {n_classes}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"SmallCNN: kernel_size must be odd and positive, got {kernel_size}")
        c, h, w = input_shape
        for depth in range(1, len(channels) + 1):
            h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise ValueError(
                    f"SmallCNN: {len(channels)} conv blocks (channels={list(channels)}) need "
                    f"inputs of at least {2 ** len(channels)}x{2 ** len(channels)} pixels; the "
                    f"input {input_shape[1]}x{input_shape[2]} vanishes after block {depth}. "
                    "Use fewer channels entries or a larger image size."
                )
        self.input_shape = input_shape
        layers: list[nn.Module] = []
        for out_c in channels:
            layers += [
                nn.Conv2d(c, int(out_c), kernel_size, padding=kernel_size // 2),
                make_activation(activation),
                nn.MaxPool2d(2),
            ]
            c = int(out_c)
        layers += [nn.Flatten(), nn.Linear(c * h * w, int(n_classes))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"SmallCNN built for inputs {self.input_shape}, got {tuple(x.shape[1:])}"
            )
        return self.net(x)
