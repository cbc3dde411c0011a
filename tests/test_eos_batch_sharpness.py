"""The EoS stage's batch sharpness: recorded for sgd/momentum at every sharpness measurement on
the batches the optimizer draws next, checked against a dense float64 Hessian at the final
weights; refused for optimizers it does not decide."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from otgap.data.classification import ClassificationData
from otgap.data.digits import load_digits
from otgap.models.classifiers import CLASSIFIERS
from otgap.train.eos import EosSettings, loss_function, train_eos


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    full = load_digits()
    return ClassificationData(
        name="digits",
        x_train=full.x_train[:40],
        y_train=full.y_train[:40],
        x_test=full.x_test[:16],
        y_test=full.y_test[:16],
        n_classes=10,
    )


def _settings(optimizer: str, **over) -> EosSettings:
    base = dict(
        model="mlp", optimizer=optimizer, lr=0.05, loss="mse", seed=3,
        model_hyper={"hidden": [6]}, epochs=2, batch_size=16, eval_every=3, eig_every=3,
        eig_subset=20, n_snapshots=2, batch_sharpness_batches=4,
    )  # fmt: skip
    base.update(over)
    return EosSettings(**base)


def _quotient(model, loss_fn, x, y) -> float:
    """g^T H g / g^T g from the dense float64 Hessian (torch.autograd.functional)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat([p.detach().reshape(-1) for _, p in named]).double()
    model = model.double().eval()

    def f(theta):
        params, off = {}, 0
        for name, p in named:
            params[name] = theta[off : off + p.numel()].view(p.shape)
            off += p.numel()
        return loss_fn(functional_call(model, params, (x.double(),)), y)

    H = torch.autograd.functional.hessian(f, flat)
    g = torch.autograd.functional.jacobian(f, flat)
    return float(g @ H @ g / (g @ g))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_final_batch_sharpness_matches_dense(tiny, optimizer):
    s = _settings(optimizer)
    res = train_eos(tiny, s)
    h = res.history
    measured = h.dropna(subset=["sharpness"])
    assert measured["batch_sharpness"].notna().all() and len(measured) >= 2
    assert measured["batch_sharpness_se"].notna().all()
    assert h.loc[h["sharpness"].isna(), "batch_sharpness"].isna().all()
    # the final row is measured at step T = epochs * ceil(40/16) = 6 on the next 4 batches the
    # optimizer would draw: epoch 2 for steps 6..8 and epoch 3 for step 9, in the documented
    # order randperm(n, generator seeded seed * 1_000_003 + epoch), batches of 16 (last one 8)
    last = measured.iloc[-1]
    assert int(last["step"]) == 6
    model = CLASSIFIERS["mlp"](tiny.input_shape, 10, hidden=[6])
    model.load_state_dict(res.state_dict)
    loss_fn = loss_function("mse")
    values = []
    for step in range(6, 10):
        epoch, i = divmod(step, 3)
        order = torch.randperm(40, generator=torch.Generator().manual_seed(3 * 1_000_003 + epoch))
        idx = order[i * 16 : (i + 1) * 16]
        values.append(_quotient(model, loss_fn, tiny.x_train[idx], tiny.y_train[idx]))
    mean = sum(values) / 4
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / 3) / 2
    assert last["batch_sharpness"] == pytest.approx(mean, rel=1e-4)
    assert last["batch_sharpness_se"] == pytest.approx(se, rel=1e-3)


@pytest.mark.parametrize("optimizer", ["gd", "adam", "gd_momentum"])
def test_refused_where_it_does_not_decide(tiny, optimizer):
    over = {"steps": 3, "eig_subset": None} if optimizer in ("gd", "gd_momentum") else {}
    with pytest.raises(ValueError, match="batch_sharpness_batches"):
        train_eos(tiny, _settings(optimizer, lr=0.001, **over))


def test_off_by_default(tiny):
    res = train_eos(tiny, _settings("sgd", batch_sharpness_batches=0))
    assert res.history["batch_sharpness"].isna().all()


def test_same_seed_same_batch_sharpness_and_training_unchanged(tiny):
    """Measuring draws no random numbers and touches no state: the same seed gives identical
    histories, and the training itself (losses, weights) is the same as with K = 0."""
    a = train_eos(tiny, _settings("momentum"))
    b = train_eos(tiny, _settings("momentum"))
    off = train_eos(tiny, _settings("momentum", batch_sharpness_batches=0))
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(a.history, b.history)
    cols = ["step", "train_loss", "test_loss", "sharpness", "grad_norm"]
    pd_testing.assert_frame_equal(a.history[cols], off.history[cols])
    for k, v in a.state_dict.items():
        assert torch.equal(v, off.state_dict[k])
