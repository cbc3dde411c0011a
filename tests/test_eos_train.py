"""EoS training stage, parametrised over CLASSIFIERS x OPTIMIZERS: shapes, determinism, resume,
divergence, sharpness against a dense Hessian, and the script's output files."""

from __future__ import annotations

import json
import os
import runpy
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

curvature = pytest.importorskip("otgap.curvature")
if not hasattr(curvature, "sharpness"):
    pytest.skip("otgap.curvature.sharpness is not available yet", allow_module_level=True)

from otgap.data.classification import ClassificationData  # noqa: E402
from otgap.data.digits import load_digits  # noqa: E402
from otgap.models.classifiers import CLASSIFIERS  # noqa: E402
from otgap.optim import OPTIMIZERS  # noqa: E402
from otgap.train.determinism import seed_everything  # noqa: E402
from otgap.train.eos import (  # noqa: E402
    EosSettings,
    flat_params,
    history_columns,
    loss_function,
    mse_loss,
    snapshot_schedule,
    train_eos,
)
from otgap.train.loop import Preempted  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
HYPER = {
    "mlp": {"hidden": [12]},
    "cnn": {"channels": [3]},
    "landau1": {},
    "landau1_nobn": {},
    "landau2": {"hidden": 12},
}
# Landau layers weight input feature i by i (the Landau source's arange), so on digits' 64 features their
# outputs, and the MSE loss's sharpness, are orders of magnitude larger than an MLP's.
MODEL_LR_SCALE = {"landau1": 1e-4, "landau1_nobn": 1e-4, "landau2": 1e-4}
RUNS = [(m, o) for m in CLASSIFIERS for o in OPTIMIZERS]
IDS = [f"{m}-{o}" for m, o in RUNS]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The problems here are tiny: one thread avoids OpenMP contention on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    full = load_digits()
    return ClassificationData(
        name="digits",
        x_train=full.x_train[:48],
        y_train=full.y_train[:48],
        x_test=full.x_test[:24],
        y_test=full.y_test[:24],
        n_classes=10,
    )


def settings(model, optimizer, **over):
    lr = {"adam": 1e-3, "adamw": 1e-3, "adam_fb": 1e-3}.get(optimizer, 0.05) * MODEL_LR_SCALE.get(
        model, 1.0
    )
    base = dict(
        model=model,
        optimizer=optimizer,
        lr=lr,
        loss="mse",
        seed=3,
        model_hyper=HYPER[model],
        steps=6,
        epochs=2,
        batch_size=16,  # 3 steps per epoch over 48 samples
        gd_train_subset=32,
        eval_every=2,
        eig_every=4,
        # full-batch runs measure on their 32 training samples, minibatch runs on 16
        eig_subset=None if OPTIMIZERS[optimizer].full_batch else 16,
        eig_k=2,
        n_snapshots=3,
    )
    base.update(over)
    return EosSettings(**base)


@pytest.mark.parametrize(("model", "optimizer"), RUNS, ids=IDS)
def test_run_shapes_and_records(tiny, model, optimizer):
    spec = OPTIMIZERS[optimizer]
    res = train_eos(tiny, settings(model, optimizer))
    h = res.history
    total = 6
    assert list(h.columns) == history_columns(2)
    assert h.step.tolist() == [0, 2, 4, 6]
    assert not h.diverged.any() and res.summary["diverged_step"] is None
    assert np.isfinite(h[["train_loss", "test_loss", "grad_norm", "train_acc"]]).all().all()
    # sharpness at multiples of eig_every and at the last step, NaN elsewhere
    measured = h.step.isin([0, 4, 6])
    assert h.sharpness_raw[measured].notna().all() and h.sharpness_raw[~measured].isna().all()
    # solver diagnostics where measured (warm starts run a minimum Krylov size), empty elsewhere
    assert h.eig_matvec.dtype == "Int64" and h.eig_converged.dtype == "boolean"
    min_products = min(curvature.lanczos.MIN_KRYLOV_DIM, res.summary["n_params"])
    assert (h.eig_matvec[measured] >= min_products).all() and h.eig_matvec[~measured].isna().all()
    assert h.eig_converged[measured].all() and h.eig_converged[~measured].isna().all()
    assert (h.eig_2 <= h.sharpness + 1e-9)[h.sharpness.notna()].all()
    if spec.preconditioned:  # the next update's P exists from step 0 on
        assert h.sharpness[measured].notna().all() and h.sharpness[~measured].isna().all()
    else:
        np.testing.assert_array_equal(h.sharpness, h.sharpness_raw)
    np.testing.assert_allclose(h.threshold, spec.threshold(res.summary["lr"]))
    expected_epochs = h.step if spec.full_batch else h.step / 3
    np.testing.assert_allclose(h.epoch, expected_epochs)

    # snapshots: initial weights of an independently built model, evenly spaced steps, final weights
    assert res.snapshot_steps.tolist() == snapshot_schedule(total, 3) == [0, 3, 6]
    n_params = res.summary["n_params"]
    assert res.snapshots.shape == (3, n_params) and res.snapshots.dtype == np.float32
    seed_everything(3)
    fresh = CLASSIFIERS[model](tiny.input_shape, tiny.n_classes, **HYPER[model])
    np.testing.assert_array_equal(res.snapshots[0], flat_params(fresh).numpy())
    fresh.load_state_dict(res.state_dict)
    np.testing.assert_array_equal(res.snapshots[-1], flat_params(fresh).numpy())


@pytest.mark.parametrize(("model", "optimizer"), RUNS, ids=IDS)
def test_same_seed_gives_identical_history(tiny, model, optimizer):
    a = train_eos(tiny, settings(model, optimizer))
    b = train_eos(tiny, settings(model, optimizer))
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    np.testing.assert_array_equal(a.snapshots, b.snapshots)
    other = train_eos(tiny, settings(model, optimizer, seed=4))
    assert not np.array_equal(a.snapshots[0], other.snapshots[0])


@pytest.mark.parametrize(("model", "optimizer"), RUNS, ids=IDS)
def test_resume_after_sigterm_matches_uninterrupted_run(tiny, tmp_path, model, optimizer):
    s = settings(model, optimizer, checkpoint_every=0)
    reference = train_eos(tiny, s)

    def preempt(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted):
        train_eos(tiny, s, checkpoint_dir=tmp_path, callback=preempt)
    assert (tmp_path / "checkpoint.pt").exists()
    resumed = train_eos(tiny, s, checkpoint_dir=tmp_path)
    assert resumed.summary["resumed_from"] == 5
    pd.testing.assert_frame_equal(reference.history, resumed.history, check_exact=True)
    np.testing.assert_array_equal(reference.snapshot_steps, resumed.snapshot_steps)
    np.testing.assert_array_equal(reference.snapshots, resumed.snapshots)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_divergence_is_recorded_not_raised(tiny, optimizer):
    res = train_eos(tiny, settings("mlp", optimizer, lr=1e12, steps=30, epochs=10))
    h = res.history
    assert res.summary["diverged"] and h.diverged.iloc[-1] and not h.diverged.iloc[:-1].any()
    step = res.summary["diverged_step"]
    assert h.step.iloc[-1] == step and not np.isfinite(h.train_loss.iloc[-1])
    assert res.snapshot_steps[0] == 0 and res.snapshot_steps[-1] == step - 1
    assert np.isfinite(h.sharpness_raw.iloc[0])


def dense_hessian(model, loss_fn, x, y):
    params = [p for p in model.parameters()]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def loss_of(flat):
        chunks = torch.split(flat, sizes)
        named = {
            name: c.reshape(s)
            for (name, _), c, s in zip(model.named_parameters(), chunks, shapes, strict=True)
        }
        return loss_fn(torch.func.functional_call(model, named, (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in params]).double()
    return torch.autograd.functional.hessian(loss_of, flat)


def twin_run(tiny, optimizer, steps=6):
    """The run's updates replayed by hand with torch optimizers: same init, same batches."""
    seed_everything(3)
    twin = CLASSIFIERS["mlp"](tiny.input_shape, 10, **HYPER["mlp"])
    if optimizer in ("adam", "adam_fb"):
        opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(
            twin.parameters(), lr=0.05, momentum=0.9 if optimizer == "gd_momentum" else 0.0
        )

    def batch(step):
        if OPTIMIZERS[optimizer].full_batch:
            return torch.arange(32)
        order = torch.randperm(
            48, generator=torch.Generator().manual_seed(3 * 1_000_003 + step // 3)
        )
        return order[(step % 3) * 16 : (step % 3 + 1) * 16]

    for step in range(steps):
        idx = batch(step)
        opt.zero_grad()
        mse_loss(twin(tiny.x_train[idx]), tiny.y_train[idx]).backward()
        opt.step()
    return twin, opt, batch


@pytest.mark.parametrize("optimizer", ["gd", "gd_momentum", "adam", "adam_fb"])
def test_final_sharpness_matches_dense_hessian(tiny, optimizer):
    s = settings("mlp", optimizer, eig_k=2, eig_tol=1e-8, eig_max_iter=200)
    res = train_eos(tiny, s)
    n_eig = 32 if OPTIMIZERS[optimizer].full_batch else 16  # full batch: its training subset
    twin, opt, batch = twin_run(tiny, optimizer)
    np.testing.assert_array_equal(flat_params(twin).numpy(), res.snapshots[-1])
    H = dense_hessian(twin, mse_loss, tiny.x_train[:n_eig].double(), tiny.y_train[:n_eig])
    top = torch.linalg.eigvalsh(H).flip(0)[:2].numpy()
    last = res.history.iloc[-1]
    assert last.sharpness_raw == pytest.approx(top[0], rel=1e-5)
    if not OPTIMIZERS[optimizer].preconditioned:
        assert last.eig_2 == pytest.approx(top[1], rel=1e-5)
        return
    # Adam: lambda_1(P^-1/2 H P^-1/2) with P the preconditioner of the NEXT update (step 7),
    # built by hand from the twin's moments and the gradient of the batch that update will see:
    # v_7 = b2 v_6 + (1 - b2) g_7^2, P = (1 - b1^7)(sqrt(v_7 / (1 - b2^7)) + eps)
    idx = batch(6)
    twin.zero_grad()
    mse_loss(twin(tiny.x_train[idx]), tiny.y_train[idx]).backward()
    P = []
    for p in twin.parameters():
        st = opt.state[p]
        t = float(st["step"]) + 1
        v_next = 0.999 * st["exp_avg_sq"] + 0.001 * p.grad**2
        P.append(((1 - 0.9**t) * ((v_next / (1 - 0.999**t)).sqrt() + 1e-8)).reshape(-1))
    d = torch.cat(P).double().rsqrt()
    top_pre = torch.linalg.eigvalsh(d[:, None] * H * d[None, :]).flip(0)[:2].numpy()
    assert last.sharpness == pytest.approx(top_pre[0], rel=1e-5)
    assert last.eig_2 == pytest.approx(top_pre[1], rel=1e-5)


def test_losses_by_hand():
    logits = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    labels = torch.tensor([2, 1])
    # 0.5 * ||f - onehot||^2 per example: 0.5*(1 + 4 + 0.25) and 0.5*(0 + 4 + 1), then the mean
    assert float(mse_loss(logits, labels)) == pytest.approx((2.625 + 2.5) / 2)
    ce = loss_function("ce")(logits, labels)
    by_hand = -np.mean(
        [0.5 - np.log(np.exp([1, -2, 0.5]).sum()), 3 - np.log(np.exp([0, 3, -1]).sum())]
    )
    assert float(ce) == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_function("hinge")
    assert loss_function("mse").separable and loss_function("ce").separable


def test_bad_settings_fail_before_training(tiny):
    with pytest.raises(ValueError, match="multiple of eval_every"):
        train_eos(tiny, settings("mlp", "gd", eval_every=3, eig_every=4))
    with pytest.raises(ValueError, match="gd_train_subset"):
        train_eos(tiny, settings("mlp", "gd", gd_train_subset=500))
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        train_eos(tiny, settings("mlp", "adam", optimizer_hyper={"momentum": 0.9}))
    with pytest.raises(ValueError, match="vanishes"):
        train_eos(tiny, settings("cnn", "gd", model_hyper={"channels": [2, 2, 2, 2]}))
    with pytest.raises(ValueError, match="unknown key"):
        EosSettings.from_params(
            {"model": "mlp", "optimizer": "gd", "lr": 0.1, "loss": "mse", "seed": 0, "eig_evry": 3}
        )


class Named(list):
    """Snakemake's named lists: iterable, with the entries also as attributes."""

    def __init__(self, **entries):
        super().__init__(entries.values())
        self.__dict__.update(entries)


def test_script_writes_the_documented_files(tmp_path):
    out = tmp_path / "eos/dataset=digits/model=mlp/optimizer=sgd/lr=0.05/loss=ce/seed=1"
    ckpt = (
        tmp_path / ".checkpoints/eos/dataset=digits/model=mlp/optimizer=sgd/lr=0.05/loss=ce/seed=1"
    )
    smk = SimpleNamespace(
        rule="eos_train",
        threads=1,
        log=[str(tmp_path / "train.log")],
        wildcards={},
        input=Named(code=[str(SCRIPTS / "eos_train.py")]),
        output=Named(
            history=str(out / "history.csv"),
            snapshots=str(out / "snapshots.npz"),
            model=str(out / "model.pt"),
            run_json=str(out / "run.json"),
        ),
        params=SimpleNamespace(
            data={"name": "digits"},
            settings={
                "model": "mlp",
                "optimizer": "sgd",
                "lr": 0.05,
                "loss": "ce",
                "seed": 1,
                "model_hyper": {"hidden": [8]},
                "epochs": 1,
                "batch_size": 500,
                "eval_every": 1,
                "eig_every": "epoch",
                "eig_k": 2,
                "n_snapshots": 2,
                "checkpoint_every": 1,
            },
            checkpoint_dir=str(ckpt),
        ),
    )
    runpy.run_path(str(SCRIPTS / "eos_train.py"), init_globals={"snakemake": smk})
    h = pd.read_csv(out / "history.csv")
    assert list(h.columns) == [
        "step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "sharpness",
        "sharpness_raw", "eig_2", "eig_matvec", "eig_converged", "threshold", "batch_sharpness",
        "batch_sharpness_se", "grad_norm", "diverged",
    ]  # fmt: skip
    assert h.step.tolist() == [0, 1, 2] and h.diverged.dtype == bool
    with np.load(out / "snapshots.npz") as z:
        assert sorted(z.files) == ["final", "init", "params", "steps"]
        assert z["steps"].dtype == np.int64 and z["steps"].tolist() == [0, 2]
        assert z["params"].dtype == np.float32 and z["params"].shape == (
            2,
            64 * 8 + 8 + 8 * 10 + 10,
        )
        np.testing.assert_array_equal(z["init"], z["params"][0])
        np.testing.assert_array_equal(z["final"], z["params"][-1])
    state = torch.load(out / "model.pt", weights_only=True)
    assert set(state) == {"net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"}
    meta = json.loads((out / "run.json").read_text())
    assert meta["lr"] == 0.05 and meta["threshold"] == pytest.approx(40.0)
    assert meta["diverged_step"] is None and meta["n_params"] == 610 and meta["wall_seconds"] > 0
    assert meta["provenance"]["params"]["settings"]["seed"] == 1
    assert meta["provenance"]["dataset"]["split_sizes"] == {"train": 1000, "test": 797}
    assert not (ckpt / "checkpoint.pt").exists()
