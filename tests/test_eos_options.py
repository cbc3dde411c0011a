"""EoS stage options: the power-iteration switch, losses that couple samples, the device path."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from otgap.curvature import hessian_eigenpairs
from otgap.data.classification import ClassificationData
from otgap.data.digits import load_digits
from otgap.losses import LOSSES
from otgap.losses.base import Loss
from otgap.losses.classification import mse_loss
from otgap.train.eos import EosSettings, resolve_device, train_eos


@pytest.fixture(scope="module")
def tiny():
    full = load_digits()
    return ClassificationData(
        "digits", full.x_train[:40], full.y_train[:40], full.x_test[:20], full.y_test[:20], 10
    )


def settings(**over):
    base = dict(
        model="mlp", optimizer="gd", lr=0.05, loss="mse", seed=1, model_hyper={"hidden": [6]},
        steps=4, gd_train_subset=40, eval_every=2, eig_every=2, eig_subset=None, n_snapshots=2,
    )  # fmt: skip
    base.update(over)
    return EosSettings(**base)


def dense_top(model, x, y):
    params = list(model.parameters())
    sizes = [p.numel() for p in params]

    def loss_of(flat):
        named = {
            n: c.reshape(p.shape)
            for (n, p), c in zip(model.named_parameters(), torch.split(flat, sizes), strict=True)
        }
        return mse_loss(torch.func.functional_call(model, named, (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in params]).double()
    return float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat))[-1])


def test_power_iteration_switch_matches_dense_hessian(tiny):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5), torch.nn.Tanh(),
                                torch.nn.Linear(5, 10)).double()  # fmt: skip
    x, y = tiny.x_train.double(), tiny.y_train
    res = hessian_eigenpairs(model, mse_loss, x, y, solver="power", tol=1e-12, max_iter=3000)
    assert float(res.values[0]) == pytest.approx(dense_top(model, x, y), rel=1e-6)
    assert res.n_matvec <= 3000
    with pytest.raises(ValueError, match="solver must be"):
        hessian_eigenpairs(model, mse_loss, x, y, solver="arnoldi")


def test_power_runs_in_the_stage_with_the_original_budget(tiny):
    res = train_eos(tiny, settings(eig_method="power", eig_max_iter=50, eig_tol=1e-4))
    measured = res.history.dropna(subset=["sharpness"])
    assert len(measured) == 3 and (measured.eig_matvec <= 50).all()
    lanczos = train_eos(tiny, settings(eig_tol=1e-8, eig_max_iter=200)).history
    # same weights (the solver does not touch training); the values agree to power's accuracy
    pd.testing.assert_series_equal(res.history.train_loss, lanczos.train_loss)
    rel = (measured.sharpness - lanczos.sharpness[measured.index]).abs() / lanczos.sharpness
    assert (rel < 2e-2).all()
    with pytest.raises(ValueError, match="eig_method"):
        train_eos(tiny, settings(eig_method="arnoldi"))


def coupled(logits, labels):
    """A loss that couples samples: the square loss of logits centred on the batch mean."""
    return mse_loss(logits - logits.mean(dim=0, keepdim=True), labels)


def test_a_non_separable_loss_is_never_chunked(tiny, monkeypatch):
    loss = Loss("coupled", coupled, separable=False)
    assert loss.chunk_size(4096, 10_000) == 10_000
    assert Loss("mse", mse_loss).chunk_size(4096, 10_000) == 4096
    import otgap.train.eos as eos

    monkeypatch.setattr(eos, "_EVAL_CHUNK", 7)  # a separable loss would now be chunked
    monkeypatch.setitem(LOSSES._entries, "coupled", "tests:coupled")
    monkeypatch.setitem(LOSSES._cache, "coupled", loss)
    res = train_eos(tiny, settings(loss="coupled", steps=0))
    from otgap.models.classifiers import CLASSIFIERS
    from otgap.train.determinism import seed_everything

    seed_everything(1)
    model = CLASSIFIERS["mlp"](tiny.input_shape, 10, hidden=[6])
    with torch.no_grad():
        expected = float(coupled(model(tiny.x_train), tiny.y_train))
    assert res.history.train_loss.iloc[0] == pytest.approx(expected, rel=1e-6)


def test_device_path_on_cpu_is_the_same_code(tiny):
    auto = train_eos(tiny, settings(device="auto", optimizer="adam_fb", lr=1e-3))
    if torch.cuda.is_available():
        assert auto.summary["device"].startswith("cuda")
        return
    cpu = train_eos(tiny, settings(device="cpu", optimizer="adam_fb", lr=1e-3))
    assert auto.summary["device"] == cpu.summary["device"] == "cpu"
    pd.testing.assert_frame_equal(auto.history, cpu.history, check_exact=True)
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be auto, cpu or cuda"):
        resolve_device("tpu")


@pytest.mark.parametrize("optimizer", ["gd", "adam_fb"])
def test_full_batch_landscape_is_on_the_training_subset(tiny, optimizer):
    """The landscape stage maps a full-batch run on the samples it descended (here a stratified
    draw of 20): the loss at the final snapshot is the history's final train loss."""
    from otgap.analysis.eos import EosRun, landscape_samples, sharpness_samples
    from otgap.landscape.trajectory import trajectory_landscape
    from otgap.models.classifiers import CLASSIFIERS

    s = settings(optimizer=optimizer, lr=1e-3 if optimizer == "adam_fb" else 0.05,
                 gd_train_subset=20, subset="stratified", subset_seed=3)  # fmt: skip
    res = train_eos(tiny, s)
    run = EosRun(res.summary, res.history, res.snapshot_steps, res.snapshots)
    idx = landscape_samples(run, tiny, n_samples=1000)
    assert len(idx) == 20 and torch.equal(idx, sharpness_samples(run, tiny))
    assert torch.bincount(tiny.y_train[idx], minlength=10).min() >= 1  # every digit
    model = CLASSIFIERS["mlp"](tiny.input_shape, 10, hidden=[6])
    out = trajectory_landscape(
        model, mse_loss, res.snapshots, tiny.x_train[idx], tiny.y_train[idx], grid=3
    )
    final = res.history.train_loss.iloc[-1]
    assert out["trajectory_loss"][-1] == pytest.approx(final, rel=1e-6)
    assert out["trajectory_loss"][0] == pytest.approx(res.history.train_loss.iloc[0], rel=1e-6)
