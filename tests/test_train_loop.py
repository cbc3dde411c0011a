"""The shared training loop: seeding, checkpoint/resume, divergence, signals."""

import math
import os
import signal

import pytest
import torch

from otgap.train.loop import Preempted, train_loop


def make_problem(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(64, 3)
    y = x.sum(1, keepdim=True)

    def step(i):
        idx = torch.randint(0, 64, (16,))  # draws from the torch RNG: resume must restore it
        opt.zero_grad()
        loss = ((model(x[idx]) - y[idx]) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    def evaluate(i):
        with torch.no_grad():
            return {"loss": ((model(x) - y) ** 2).mean().item()}

    return model, opt, step, evaluate


def run(tmp_path, total, stop_at=None, seed=3):
    model, opt, step, evaluate = make_problem()

    def step_fn(i):
        if stop_at is not None and i == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(i)

    return train_loop(
        step_fn=step_fn,
        total_steps=total,
        seed=seed,
        stateful={"model": model, "opt": opt},
        eval_fn=evaluate,
        eval_every=5,
        checkpoint_dir=tmp_path,
        checkpoint_every=7,
        log=lambda m: None,
    ), model


def test_same_seed_same_history(tmp_path):
    a, _ = run(tmp_path / "a", 30)
    b, _ = run(tmp_path / "b", 30)
    assert a.history == b.history
    assert [r["step"] for r in a.history] == [0, 5, 10, 15, 20, 25, 30]
    c, _ = run(tmp_path / "c", 30, seed=4)
    assert c.history != a.history


def test_sigterm_checkpoints_and_resume_matches_uninterrupted(tmp_path):
    full, full_model = run(tmp_path / "full", 30)
    with pytest.raises(Preempted):
        run(tmp_path / "ckpt", 30, stop_at=12)
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists()
    resumed, resumed_model = run(tmp_path / "ckpt", 30)
    assert resumed.resumed_from == 13
    assert resumed.history == full.history
    for p, q in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_divergence_is_a_result(tmp_path):
    calls = []

    def step_fn(i):
        calls.append(i)
        return float("nan") if i == 4 else 1.0

    model = torch.nn.Linear(1, 1)
    res = train_loop(
        step_fn=step_fn,
        total_steps=20,
        seed=0,
        stateful={"m": model},
        eval_fn=lambda i: {"x": 1.0},
        eval_every=2,
        log=lambda m: None,
    )
    assert res.diverged and res.diverged_step == 5 and calls == [0, 1, 2, 3, 4]
    assert res.history[-1]["diverged"] is True and res.history[-1]["step"] == 5


def test_extras_survive_resume(tmp_path):
    model = torch.nn.Linear(2, 1)
    extras = {}

    def step_fn(i):
        extras["v"] = torch.full((3,), float(i))
        if i == 6:
            os.kill(os.getpid(), signal.SIGUSR1)
        return 0.5

    with pytest.raises(Preempted):
        train_loop(
            step_fn=step_fn,
            total_steps=10,
            seed=0,
            stateful={"m": model},
            checkpoint_dir=tmp_path,
            extras=extras,
            log=lambda m: None,
        )
    got = {}
    res = train_loop(
        step_fn=lambda i: 0.5,
        total_steps=10,
        seed=0,
        stateful={"m": model},
        checkpoint_dir=tmp_path,
        extras=got,
        log=lambda m: None,
    )
    assert torch.equal(got["v"], torch.full((3,), 6.0)) and res.resumed_from == 7
    assert math.isfinite(res.wall_seconds)


def test_loop_marks_time_each_evaluation():
    """A mark after every evaluation (step 0, each eval_every, the last step), its seconds taken
    after that evaluation: a step that sleeps 0.2 s shows up between the marks around it."""
    import time

    from otgap.train.loop import timing_marks

    def step_fn(i):
        if i == 4:
            time.sleep(0.2)
        return 0.5

    res = train_loop(
        step_fn=step_fn,
        total_steps=7,
        seed=0,
        stateful={},
        eval_fn=lambda i: {"x": 1.0},
        eval_every=3,
        log=lambda m: None,
    )
    assert [m[0] for m in res.marks] == [0, 3, 6, 7]
    secs = [m[1] for m in res.marks]
    assert secs == sorted(secs) and secs[-1] <= res.wall_seconds
    assert secs[2] - secs[1] >= 0.2 > secs[1] - secs[0]
    assert [m[0] for m in timing_marks(res.marks, keep=2)] == [0, 3, 7]


def test_each_measurement_logs_sharpness_against_its_threshold():
    """An Edge-of-Stability job's log shows sharpness / threshold at every measurement (the
    ratio by hand), skips measurements without a sharpness, and an early stop names its loss."""
    sharp = {0: 1.0, 4: 30.0, 8: float("nan")}
    lines: list[str] = []
    train_loop(
        step_fn=lambda step: 0.5, total_steps=12, seed=0, stateful={}, eval_every=4,
        eval_fn=lambda step: {"sharpness": sharp.get(step, 45.0), "threshold": 40.0},
        label="eos", log=lines.append, should_stop=lambda step: step == 8,
    )  # fmt: skip
    readings = [m for m in lines if "sharpness" in m]
    assert readings == [
        "[eos] step 0/12 sharpness 1 / threshold 40 = 0.025",
        "[eos] step 4/12 sharpness 30 / threshold 40 = 0.750",
    ]
    assert "[eos] stopped early at step 8/12: loss=0.5" in lines
