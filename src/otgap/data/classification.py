"""The one shape every image-classification data set takes in this project, and a loader by name.

A training stage asks for a data set by its config name (``digits`` or a MedMNIST 2D flag such as
``pathmnist``) and gets a :class:`ClassificationData`: float32 inputs of shape ``(N, C, H, W)``
already normalised, integer labels of shape ``(N,)``, the number of classes and the input shape. The
stage then never needs to know where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_ROOT = Path("resources") / "medmnist"


@dataclass(frozen=True)
class ClassificationData:
    """Normalised inputs and integer labels of one data set; ``val`` parts may be ``None``."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

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


def load_dataset(
    name: str,
    size: int = 28,
    root: str | Path = DEFAULT_ROOT,
    *,
    download: bool = False,
    n_train: int | None = None,
) -> ClassificationData:
    """Load ``digits`` or a MedMNIST 2D flag by name.

    ``size`` and ``root`` matter for MedMNIST only; ``n_train`` for digits only (the size of the
    training part, the rest is the test part). With ``download=False`` a MedMNIST file must already
    be in ``root`` (the workflow's download rule puts it there).
    """
    if name == "digits":
        from otgap.data.digits import load_digits

        return load_digits() if n_train is None else load_digits(n_train=n_train)
    from otgap.data.medmnist import load_medmnist

    return load_medmnist(name, size=size, root=root, download=download)
