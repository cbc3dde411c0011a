"""The one shape every image-classification data set takes in this project.

Every loader (digits, MedMNIST, MNIST, CIFAR-10) returns a :class:`ClassificationData`: float32
inputs of shape ``(N, C, H, W)``, integer labels of shape ``(N,)``, the number of classes and the
input shape. Loaders import it from here and the loader by name (``classification.load_dataset``)
imports the loaders, so no module imports its own importer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DATA_ROOT = Path("resources")  # config data.root
DEFAULT_ROOT = DATA_ROOT / "medmnist"  # MedMNIST files (kept for older callers)


@dataclass(frozen=True)
class ClassificationData:
    """Normalised inputs and integer labels of one data set; ``val`` parts may be ``None``.

    ``source`` describes where the data came from (files with their size and MD5/SHA-256, the
    checksum policy); :func:`dataset_provenance` puts it into a run's provenance sidecar.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    source: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for part in ("train", "val", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x is None and y is None:
                continue
            if x is None or y is None:
                raise ValueError(f"{self.name}: {part} inputs and labels must both be given")
            if x.dtype != torch.float32 or x.ndim != 4:
                raise ValueError(
                    f"{self.name}: {part} inputs must be float32 (N, C, H, W), "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"{self.name}: {part} labels must be int64 of shape ({x.shape[0]},), "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
            if tuple(x.shape[1:]) != self.input_shape:
                raise ValueError(
                    f"{self.name}: {part} inputs have shape {tuple(x.shape[1:])}, "
                    f"train inputs {self.input_shape}"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(
                    f"{self.name}: {part} labels must lie in [0, {self.n_classes}), "
                    f"found {int(y.min())}..{int(y.max())}"
                )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, ``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        return int(torch.tensor(self.input_shape).prod())


def dataset_provenance(data: ClassificationData) -> dict[str, Any]:
    """What a provenance sidecar records about a data set: name, split sizes, classes, source."""
    splits = {
        part: int(len(getattr(data, f"y_{part}")))
        for part in ("train", "val", "test")
        if getattr(data, f"y_{part}") is not None
    }
    return {
        "name": data.name,
        "n_classes": int(data.n_classes),
        "input_shape": list(data.input_shape),
        "split_sizes": splits,
        "source": data.source,
    }
