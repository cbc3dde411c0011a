"""Training and sharpness subsets: first-N, seeded stratified, and the missing-class error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otgap.data.classification import ClassificationData
from otgap.train.eos import EosSettings, run_subsets, train_eos
from otgap.train.subsets import class_counts, subset_indices


def sorted_labels(per_class=(30, 20, 10)):
    return torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(per_class)])


def test_first_n_is_the_prefix():
    y = torch.tensor([2, 0, 1, 2, 1, 0, 0])
    assert subset_indices(y, 3).tolist() == [0, 1, 2]
    assert subset_indices(y, None).tolist() == list(range(7))


def test_stratified_holds_every_class_in_proportion():
    y = sorted_labels()  # 60 samples sorted by class: 30/20/10
    idx = subset_indices(y, 12, mode="stratified", seed=5)
    assert idx.tolist() == sorted(set(idx.tolist())) and len(idx) == 12
    # proportional shares 6/4/2, counted by hand
    assert class_counts(y[idx], 3) == [6, 4, 2]
    again = subset_indices(y, 12, mode="stratified", seed=5)
    other = subset_indices(y, 12, mode="stratified", seed=6)
    assert torch.equal(idx, again) and not torch.equal(idx, other)


def test_stratified_gives_rare_classes_one_sample():
    y = sorted_labels((97, 2, 1))
    idx = subset_indices(y, 5, mode="stratified", seed=0)
    counts = class_counts(y[idx], 3)
    assert sum(counts) == 5 and min(counts) >= 1


def test_first_n_of_a_class_sorted_file_stops_with_a_clear_message():
    y = sorted_labels()
    with pytest.raises(ValueError, match=r"miss class\(es\) \[1, 2\].*stratified"):
        subset_indices(y, 20, what="gd_train_subset")
    with pytest.raises(ValueError, match="asks for 61 samples"):
        subset_indices(y, 61)
    with pytest.raises(ValueError, match="unknown subset mode"):
        subset_indices(y, 5, mode="random")


def sorted_digits():
    """A class-sorted data file: digits-like inputs whose training part is ordered by label."""
    gen = torch.Generator().manual_seed(0)
    y = sorted_labels((20, 20, 20))
    x = torch.randn(len(y), 1, 4, 4, generator=gen) + y.float()[:, None, None, None]
    return ClassificationData("sorted", x, y, x[:12].clone(), y[:12].clone(), n_classes=3)


def settings(**over):
    base = dict(
        model="mlp", optimizer="gd", lr=0.1, loss="mse", seed=0, model_hyper={"hidden": [4]},
        steps=2, gd_train_subset=15, eval_every=1, eig_every=2, eig_subset=None, n_snapshots=2,
    )  # fmt: skip
    base.update(over)
    return EosSettings(**base)


def test_class_sorted_file_either_stops_or_trains_on_every_class():
    data = sorted_digits()
    with pytest.raises(ValueError, match="gd_train_subset.*miss class"):
        train_eos(data, settings())
    res = train_eos(data, settings(subset="stratified"))
    assert res.summary["train_class_counts"] == [5, 5, 5]
    assert res.summary["eig_class_counts"] == [5, 5, 5] and res.summary["eig_size"] == 15
    # minibatch run: trains on everything, measures on a stratified eig subset
    res = train_eos(
        data, settings(optimizer="sgd", epochs=1, batch_size=30, eig_subset=6, subset="stratified")
    )
    assert res.summary["train_class_counts"] == [20, 20, 20]
    assert res.summary["eig_class_counts"] == [2, 2, 2]


def test_full_batch_sharpness_subset_is_the_training_subset():
    y = torch.arange(40) % 4
    train, eig = run_subsets(y, 4, settings(gd_train_subset=12), full_batch=True)
    assert torch.equal(train, eig) and len(train) == 12
    with pytest.raises(ValueError, match="eig_subset=8 but the full-batch optimizer"):
        run_subsets(y, 4, settings(gd_train_subset=12, eig_subset=8), full_batch=True)
    train, eig = run_subsets(y, 4, settings(eig_subset=8), full_batch=False)
    assert len(train) == 40 and eig.tolist() == list(range(8))
    assert np.array_equal(class_counts(y[eig], 4), [2, 2, 2, 2])
