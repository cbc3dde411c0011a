"""scikit-learn's bundled handwritten digits (8x8, 10 classes): the offline Edge-of-Stability set.

Works without network, so the quick configuration and the tests run anywhere. The first
``n_train`` samples (1000 by default, the setup measured for this project, docs/sources.md#edge-of-stability)
form the training part, the remaining ones the held-out test part. Each pixel is standardised with
the training part's mean and standard deviation (pixels constant over the training part are only
centred), and inputs keep their image shape ``(1, 8, 8)`` so that a CNN can take them too.
"""

from __future__ import annotations

import numpy as np
import torch

from otgap.data.dataset import ClassificationData

N_SAMPLES = 1797


def load_digits(n_train: int = 1000) -> ClassificationData:
    """Return the digits set split into the first ``n_train`` samples and the rest, standardised."""
    from sklearn.datasets import load_digits as sk_load_digits

    if not 0 < n_train < N_SAMPLES:
        raise ValueError(f"digits: n_train must be in [1, {N_SAMPLES - 1}], got {n_train}")
    bunch = sk_load_digits()
    x = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.int64)
    mean = x[:n_train].mean(axis=0)
    std = x[:n_train].std(axis=0)
    std[std == 0] = 1.0
    x = ((x - mean) / std).astype(np.float32).reshape(-1, 1, 8, 8)
    return ClassificationData(
        name="digits",
        x_train=torch.from_numpy(x[:n_train].copy()),
        y_train=torch.from_numpy(y[:n_train].copy()),
        x_test=torch.from_numpy(x[n_train:].copy()),
        y_test=torch.from_numpy(y[n_train:].copy()),
        n_classes=10,
    )
