"""Image-classification data sets by config name.

A training stage asks for a data set by its config name (``digits``, ``mnist``, ``cifar10`` or a
MedMNIST 2D flag such as ``pathmnist``) and gets a :class:`ClassificationData` (defined in
:mod:`otgap.data.dataset`, re-exported here for older imports). The stage then never needs to know
where the data came from.
"""

from __future__ import annotations

from pathlib import Path

from otgap.data.cifar10 import load_cifar10
from otgap.data.dataset import DATA_ROOT, DEFAULT_ROOT, ClassificationData, dataset_provenance
from otgap.data.digits import load_digits
from otgap.data.medmnist import load_medmnist
from otgap.data.mnist import load_mnist

__all__ = [
    "DATA_ROOT",
    "DEFAULT_ROOT",
    "ClassificationData",
    "dataset_provenance",
    "default_root",
    "load_dataset",
]


def default_root(name: str) -> Path:
    """The folder a data set's files live in by default: ``resources/<mnist|cifar10|medmnist>``."""
    if name in ("mnist", "cifar10"):
        return DATA_ROOT / name
    return DEFAULT_ROOT


def load_dataset(
    name: str,
    size: int = 28,
    root: str | Path | None = None,
    *,
    download: bool = False,
    n_train: int | None = None,
    medmnist_md5: str = "official",
) -> ClassificationData:
    """Load ``digits``, ``mnist``, ``cifar10`` or a MedMNIST 2D flag by name.

    ``root`` is the folder holding the data set's files (default :func:`default_root`, e.g.
    ``resources/mnist``; the workflow passes ``<data.root>/<mnist|cifar10|medmnist>``); ``size``
    and ``medmnist_md5`` (``official``, ``skip`` or a 32-digit hex MD5) matter for MedMNIST only;
    ``n_train`` for digits only (the size of the training part, the rest is the test part). With
    ``download=False`` the files must already be in ``root`` (the workflow's download rules put
    them there).
    """
    if name == "digits":
        return load_digits() if n_train is None else load_digits(n_train=n_train)
    root = default_root(name) if root is None else root
    if name == "mnist":
        return load_mnist(root, download=download)
    if name == "cifar10":
        return load_cifar10(root, download=download)
    return load_medmnist(name, size=size, root=root, download=download, md5=medmnist_md5)
