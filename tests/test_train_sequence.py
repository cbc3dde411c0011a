"""Training and scoring of the A.1 sequence models on a small FitzHugh-Nagumo dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from otgap.data.fhn import vector_field
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.metrics.forecast import METRIC_NAMES, evaluate_forecaster
from otgap.models.sequence import build_sequence_model
from otgap.train.sequence import (
    FitConfig,
    curriculum_horizon,
    fit_sequence_model,
    multi_step_loss,
    one_step_loss,
    split_tensors,
    vector_field_loss,
)

SPEC = DatasetSpec(
    n_train=48,
    n_val=16,
    n_test=16,
    n_context=12,
    horizon=6,
    rollout_n=3,
    rollout_length=80,
    rollout_context=5,
    burn_in=50.0,
)


@pytest.fixture(scope="module")
def data():
    return build_dataset("fhn", Condition("sparse", 0.3, 0.7), 0, SPEC, 0.0, np.array([1.2, 0.5]))


def test_dataset_fixture_has_the_contract_keys(data):
    for split in ("train", "val", "test"):
        assert not np.any(data[f"{split}_obs"] & data[f"{split}_target"])
        assert data[f"{split}_obs"][:, 0].all()
    assert math.isnan(float(data["lyapunov_time"]))


def test_one_step_loss_by_hand_and_nan_safe():
    t = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    y = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [5.0, 5.0], [3.0, 1.0]]])
    obs = torch.tensor([[True, True, False, True]])
    model = build_sequence_model("last_observation")
    # predictions at observed 1 and 3: y0 = (0,0) and y1 = (1,2); errors (1,2) and (2,-1)
    expected = (1 + 4 + 4 + 1) / 4
    assert float(one_step_loss(model, t, y, obs)) == pytest.approx(expected)
    y_nan = y.clone()
    y_nan[0, 2] = float("nan")
    assert float(one_step_loss(model, t, y_nan, obs)) == pytest.approx(expected)


def _fit(name, data, epochs=15, seed=0, **kw):
    torch.manual_seed(seed)
    model = build_sequence_model(name, hidden=16, **kw)
    cfg = FitConfig(epochs=epochs, batch_size=16, lr=5e-3)
    res = fit_sequence_model(
        model,
        split_tensors(data, "train"),
        cfg,
        seed=seed,
        val=split_tensors(data, "val"),
        true_field=lambda t, y: vector_field(t, y, system="fhn"),
        log=lambda msg: None,
        n_context=int(data["n_context"]),
    )
    return model, res


@pytest.mark.parametrize("name", ["neural_ode", "lstm_dt", "grud"])
def test_training_reduces_validation_loss(name, data):
    model, res = _fit(name, data)
    val = [r["val_loss"] for r in res.history]
    assert res.steps_done == 15 * 3 and not res.diverged  # no patience set: every epoch runs
    assert val[-1] < 0.5 * val[0], val


def test_training_is_deterministic(data):
    a, _ = _fit("tlstm", data, epochs=3, seed=4)
    b, _ = _fit("tlstm", data, epochs=3, seed=4)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_oracle_regresses_the_true_field(data):
    t, y, obs = split_tensors(data, "train")
    truth = lambda tt, yy: vector_field(tt, yy, system="fhn")  # noqa: E731
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(
            vector_field_loss(
                build_sequence_model("neural_ode_oracle", hidden=16), t, y, obs, truth
            )
        )
    model, res = _fit("neural_ode_oracle", data, epochs=30)
    with torch.no_grad():
        after = float(vector_field_loss(model, t, y, obs, truth))
    assert after < 0.2 * before
    with pytest.raises(ValueError, match="true_field"):
        fit_sequence_model(model, (t, y, obs), FitConfig(epochs=1, batch_size=8, lr=1e-3), seed=0)


def test_baseline_is_not_trained(data):
    model = build_sequence_model("last_observation")
    out = fit_sequence_model(
        model, split_tensors(data, "train"), FitConfig(epochs=5, batch_size=8, lr=1e-3), seed=0
    )
    assert out is None


def test_fit_config_rejects_nonsense():
    with pytest.raises(ValueError):
        FitConfig(epochs=1, batch_size=0, lr=1e-3)
    with pytest.raises(ValueError):
        FitConfig(epochs=1, batch_size=1, lr=0.0)


def test_evaluation_of_last_observation_by_hand(data):
    model = build_sequence_model("last_observation")
    metrics, curves = evaluate_forecaster(model, data, keep_rollouts=1)
    assert set(metrics) == set(METRIC_NAMES)
    # independent numpy computation of the zero-order hold at the held-out points
    y, obs, target = data["test_y"], data["test_obs"], data["test_target"]
    sq = []
    for b in range(len(y)):
        last = y[b, 0]
        for i in range(1, y.shape[1]):
            if target[b, i]:
                sq.extend((last - y[b, i]) ** 2)
            if obs[b, i]:
                last = y[b, i]
    assert metrics["rmse_interp"] == pytest.approx(math.sqrt(np.mean(sq)))
    rc = int(data["rollout_context"])
    held = data["rollout_y"][:, rc - 1 : rc]
    rollout_err = data["rollout_y"][:, rc:] - held
    assert metrics["rmse_rollout"] == pytest.approx(math.sqrt(np.mean(rollout_err**2)))
    assert math.isnan(metrics["vpt"])  # the unforced system has no Lyapunov time
    assert curves["rollout_pred"].shape == (1, *data["rollout_y"].shape[1:])
    assert curves["error_growth_mean"].shape == (data["rollout_y"].shape[1] - rc,)


def test_evaluation_vpt_and_input_checks(data):
    chaotic = dict(data, lyapunov_time=np.float64(25.0))
    metrics, curves = evaluate_forecaster(build_sequence_model("last_observation"), chaotic)
    assert math.isfinite(metrics["vpt"]) and metrics["vpt"] >= 0
    assert np.isfinite(curves["vpt_per_trajectory"]).all()
    bad = dict(data, test_target=data["test_obs"].copy())
    with pytest.raises(ValueError, match="overlap"):
        evaluate_forecaster(build_sequence_model("last_observation"), bad)
    missing = {k: v for k, v in data.items() if k != "rollout_t"}
    with pytest.raises(KeyError, match="rollout_t"):
        evaluate_forecaster(build_sequence_model("last_observation"), missing)


# ---- the multi-step objective, curriculum, early stopping, best weights ----------------------


def test_curriculum_horizon_by_hand():
    assert [curriculum_horizon(e, 10, 9) for e in (0, 1, 4, 9, 50)] == [1, 2, 5, 10, 10]
    assert curriculum_horizon(0, 10, 0) == 10
    assert curriculum_horizon(3, 0, 5) == 0


def test_multi_step_loss_by_hand(data):
    """The loss equals the MSE, computed here point by point, of a fresh open-loop call over the
    context's observed points and the first H horizon points; horizon values are never read."""
    torch.manual_seed(0)
    model = build_sequence_model("tlstm", hidden=8)
    t, y, obs = split_tensors(data, "train")
    t, y, obs = t[:5], y[:5], obs[:5]
    nc, h = int(data["n_context"]), 3
    loss = float(multi_step_loss(model, t, y, obs, nc, h))
    # an independent rollout: the forecast part fed back by hand, one point at a time
    with torch.no_grad():
        pred = model(t[:, : nc + h], y[:, : nc + h], obs[:, : nc + h], forecast_from=nc)
        y_blind = y.clone()
        y_blind[:, nc:] = float("nan")  # the horizon's values must not be read
        again = model(t[:, : nc + h], y_blind[:, : nc + h], obs[:, : nc + h], forecast_from=nc)
    torch.testing.assert_close(again, pred)
    sq = []
    for b in range(5):
        for i in range(1, nc + h):
            if i >= nc or bool(obs[b, i]):
                sq.extend(((pred[b, i] - y[b, i]) ** 2).tolist())
    assert loss == pytest.approx(float(np.mean(sq)), rel=1e-5)


def test_early_stopping_keeps_the_best_validation_weights(data):
    """Training stops after `patience` epochs without improvement, and the saved weights give the
    best validation loss of the history (recomputed here), not the last."""
    torch.manual_seed(0)
    model = build_sequence_model("lstm_dt", hidden=8)
    cfg = FitConfig(epochs=400, batch_size=48, lr=0.05, patience=5, horizon_ramp_epochs=3)
    nc = int(data["n_context"])
    res = fit_sequence_model(
        model,
        split_tensors(data, "train"),
        cfg,
        seed=0,
        val=split_tensors(data, "val"),
        n_context=nc,
    )
    hist = [r for r in res.history if "val_loss" in r]
    losses = np.array([r["val_loss"] for r in hist])
    best = int(np.argmin(losses))
    assert res.steps_done < 400, "lr 0.05 should plateau well before 400 epochs"
    assert hist[-1]["epoch"] - hist[best]["epoch"] == 5
    assert res.extras["best_epoch"] == hist[best]["epoch"]
    with torch.no_grad():
        v = float(multi_step_loss(model, *split_tensors(data, "val"), nc, SPEC.horizon))
    assert v == pytest.approx(losses.min(), rel=1e-6)
    assert v <= losses[-1]


def test_last_epoch_weights_and_one_step_objective_stay_reachable(data):
    torch.manual_seed(0)
    model = build_sequence_model("neural_ode", hidden=8, n_sub=1)
    cfg = FitConfig(epochs=3, batch_size=48, lr=0.01, objective="one_step", keep="last")
    res = fit_sequence_model(
        model, split_tensors(data, "train"), cfg, seed=0, val=split_tensors(data, "val")
    )
    with torch.no_grad():
        v = float(one_step_loss(model, *split_tensors(data, "val")))
    assert v == pytest.approx(res.history[-1]["val_loss"], rel=1e-6)
    with pytest.raises(ValueError, match="objective"):
        FitConfig(epochs=1, batch_size=1, lr=1e-3, objective="nope")
    with pytest.raises(ValueError, match="n_context"):
        fit_sequence_model(
            build_sequence_model("tlstm", hidden=4),
            split_tensors(data, "train"),
            FitConfig(epochs=1, batch_size=8, lr=1e-3),
            seed=0,
        )


def _fit_one_cell(data, cfg, batched):
    from otgap.train.batched import train_seeds

    if batched:
        (run,) = train_seeds("lstm_dt", {"hidden": 8}, [data], cfg, [0], log=lambda m: None)
        return run.result
    torch.manual_seed(0)
    model = build_sequence_model("lstm_dt", hidden=8)
    return fit_sequence_model(
        model, split_tensors(data, "train"), cfg, seed=0, val=split_tensors(data, "val"),
        n_context=int(data["n_context"]),
    )  # fmt: skip


@pytest.mark.parametrize("batched", [False, True])
def test_patience_counts_only_after_the_curriculum_ramp(data, batched):
    """With lr 1e-12 (updates below float32 resolution) the validation loss never improves after
    epoch 0. Early stopping with patience 2 must still train through the 10-epoch horizon ramp
    and stop at epoch 10 + 2, not at epoch 2."""
    cfg = FitConfig(epochs=50, batch_size=48, lr=1e-12, patience=2, horizon_ramp_epochs=10)
    res = _fit_one_cell(data, cfg, batched)
    assert res.extras["best_epoch"] == 0
    assert res.extras["stopped_epoch"] == 12


@pytest.mark.parametrize("batched", [False, True])
def test_lr_plateau_waits_for_the_end_of_the_ramp(data, batched):
    """ReduceLROnPlateau with patience 0 halves the rate at any evaluation that is not a new
    best; during the ramp (the objective still grows) it must not act, after it it does."""
    cfg = FitConfig(
        epochs=40, batch_size=48, lr=0.05, horizon_ramp_epochs=10, plateau_patience=0,
        plateau_factor=0.5,
    )  # fmt: skip
    res = _fit_one_cell(data, cfg, batched)
    lrs = {int(r["epoch"]): r["lr"] for r in res.history if "val_loss" in r}
    assert {lrs[e] for e in range(11)} == {0.05}
    assert min(lrs.values()) < 0.05, "the plateau never acted after the ramp: coverage lost"
