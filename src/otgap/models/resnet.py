"""ResNet-18 as torchvision builds it (``torchvision.models.resnet18(weights=None)``), written here
because torchvision is not a dependency; BiostatisV6's CIFAR-10 benchmark replaces its ``fc`` with a
new 10-way layer (11,181,642 parameters).

Architecture (He et al. 2016, torchvision's layout): 7x7 stride-2 convolution (64 channels, no
bias), batch norm, ReLU, 3x3 stride-2 max-pool; four stages of two ``BasicBlock`` s (64, 128, 256,
512 channels; stages 2-4 start with stride 2 and a 1x1 convolution + batch norm on the shortcut);
global average pool; linear layer. Initialisation as torchvision's: Kaiming-normal (fan-out, ReLU)
convolutions, batch-norm weight 1 and bias 0, ``nn.Linear``'s default for ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1-projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """torchvision's ResNet with ``BasicBlock`` stages; ``blocks=(2, 2, 2, 2)`` is ResNet-18."""

    def __init__(
        self,
        n_classes: int = 1000,
        blocks: Sequence[int] = (2, 2, 2, 2),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"ResNet: need at least 2 classes, got {n_classes}")
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"ResNet: blocks must be four positive counts, got {list(blocks)}")
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c_in = 64
        stages = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock(c_in, width, stride)]
            layers += [BasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(n_classes: int = 10) -> ResNet:
    """ResNet-18 with an ``n_classes``-way ``fc`` (BiostatisV6's benchmark: 10, 11,181,642 parameters)."""
    return ResNet(n_classes, (2, 2, 2, 2))
