"""Small data sets of the Landau stage with inputs in [0, 1]: scikit-learn's 2-D sets and digits.

The seeds show decision boundaries on scikit-learn's ``make_circles``, ``make_moons`` and
``make_classification`` (2 features); their noise claim is about inputs in [0, 1]. Here the 2-D
sets are min-max scaled to [0, 1] per feature, and digits (0..16 grey levels) are divided by 16,
so Gaussian input noise of a given sigma means the same for every data set (MNIST from
``otgap.data.mnist`` is in [0, 1] already).
"""

from __future__ import annotations

import numpy as np
import torch

from otgap.data.dataset import ClassificationData

TOY_SETS = ("circles", "moons", "classification")
DIGITS_N = 1797


def make_toy2d(name: str, n_samples: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: ``x`` float32 (n, 2) scaled to [0, 1] per feature, ``y`` int64 in {0, 1}."""
    from sklearn import datasets

    if n_samples < 4:
        raise ValueError(f"toy2d: n_samples must be at least 4, got {n_samples}")
    if name == "circles":
        x, y = datasets.make_circles(n_samples, noise=0.08, factor=0.5, random_state=seed)
    elif name == "moons":
        x, y = datasets.make_moons(n_samples, noise=0.15, random_state=seed)
    elif name == "classification":
        x, y = datasets.make_classification(
            n_samples,
            n_features=2,
            n_informative=2,
            n_redundant=0,
            n_clusters_per_class=1,
            class_sep=1.0,
            random_state=seed,
        )
    else:
        raise ValueError(f"toy2d: unknown data set '{name}'; choose one of {TOY_SETS}")
    lo, hi = x.min(axis=0), x.max(axis=0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return x.astype(np.float32), y.astype(np.int64)


def load_digits_unit(n_train: int = 1000) -> ClassificationData:
    """scikit-learn's digits as (N, 1, 8, 8) in [0, 1]; the first ``n_train`` samples train."""
    from sklearn.datasets import load_digits

    if not 0 < n_train < DIGITS_N:
        raise ValueError(f"digits: n_train must be in [1, {DIGITS_N - 1}], got {n_train}")
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    return ClassificationData(
        name="digits",
        x_train=torch.from_numpy(x[:n_train].copy()),
        y_train=torch.from_numpy(y[:n_train].copy()),
        x_test=torch.from_numpy(x[n_train:].copy()),
        y_test=torch.from_numpy(y[n_train:].copy()),
        n_classes=10,
    )
