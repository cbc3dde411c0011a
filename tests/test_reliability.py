"""Reliability: checkpoints keyed by the job's identity, constant-size checkpoints with an
append-only snapshot file, readable file modes, byte-identical model files, unreadable inputs set
aside for rebuild. Each test drives the library's training functions directly on tiny problems."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from otgap.deps import job_identity
from otgap.io import (
    UnreadableInput,
    read_npz,
    write_csv,
    write_json,
    write_npz,
    write_text,
    write_torch,
)
from otgap.jobs import job
from otgap.models.sequence import build_sequence_model
from otgap.train.determinism import seed_everything
from otgap.train.loop import (
    CHECKPOINT_NAME,
    SNAPSHOTS_NAME,
    Preempted,
    SnapshotLog,
    clear_checkpoint,
    train_loop,
)
from otgap.train.sequence import FitConfig, fit_sequence_model, save_sequence_model

# ---- FitzHugh-Nagumo training: SIGTERM, change a value, rerun -----------------------------------


def _split(n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    t = torch.cumsum(0.05 + 0.1 * torch.rand(n, 10, generator=gen, dtype=torch.float64), dim=1)
    y = torch.randn(n, 10, 2, generator=gen)
    return t, y, torch.ones(n, 10, dtype=torch.bool)


TRAIN, VAL = _split(16, 0), _split(8, 1)


def fhn_run(ckpt: Path | None, *, lr=5e-3, hidden=8, stop_at=None, identity=True):
    """Train lstm_dt for 6 epochs of 2 steps; SIGTERM when the progress line of ``stop_at`` is
    logged. Returns (loop result, log lines)."""
    seed_everything(0)
    model = build_sequence_model("lstm_dt", hidden=hidden)
    cfg = FitConfig(epochs=6, batch_size=8, lr=lr, log_every_epochs=1, objective="one_step")
    lines: list[str] = []

    def log(msg):
        lines.append(msg)
        if stop_at is not None and f"step {stop_at}/" in msg:
            os.kill(os.getpid(), signal.SIGTERM)

    ident = job_identity({"settings": {"lr": lr, "hidden": hidden}}, []) if identity else None
    res = fit_sequence_model(
        model, TRAIN, cfg, seed=0, val=VAL, checkpoint_dir=ckpt, log=log, identity=ident
    )
    return res, lines


def test_changed_lr_discards_the_checkpoint_and_starts_fresh(tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Preempted):
        fhn_run(ckpt, lr=5e-3, stop_at=6)
    assert (ckpt / CHECKPOINT_NAME).exists()
    res, lines = fhn_run(ckpt, lr=1e-3)
    discards = [m for m in lines if "discarding checkpoint" in m]
    assert len(discards) == 1 and str(ckpt / CHECKPOINT_NAME) in discards[0]
    assert "settings.lr: 0.005 -> 0.001" in discards[0]
    assert res.resumed_from is None
    lrs = [r["lr"] for r in res.history]
    assert lrs and all(lr == 1e-3 for lr in lrs)
    # the same numbers as a run that never saw the stale checkpoint
    fresh, _ = fhn_run(tmp_path / "fresh", lr=1e-3)
    assert res.history == fresh.history


def test_changed_hidden_size_starts_fresh_instead_of_failing(tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Preempted):
        fhn_run(ckpt, hidden=8, stop_at=4)
    res, lines = fhn_run(ckpt, hidden=12)
    assert res.resumed_from is None and res.steps_done == 12
    assert any("discarding checkpoint" in m and "settings.hidden: 8 -> 12" in m for m in lines)


def test_same_identity_still_resumes_to_the_uninterrupted_numbers(tmp_path):
    with pytest.raises(Preempted):
        fhn_run(tmp_path / "ckpt", stop_at=6)
    resumed, lines = fhn_run(tmp_path / "ckpt")
    full, _ = fhn_run(tmp_path / "full")
    assert resumed.resumed_from == 6 and not any("discarding" in m for m in lines)
    assert resumed.history == full.history


def test_incompatible_checkpoint_without_identity_is_discarded_and_leaves_the_model_alone(
    tmp_path,
):
    """Without an identity the tensors do not fit (size mismatch): discard, not a crash loop,
    and the half-applied state is rolled back (the run equals a fresh one)."""
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Preempted):
        fhn_run(ckpt, hidden=8, stop_at=4, identity=False)
    res, lines = fhn_run(ckpt, hidden=12, identity=False)
    fresh, _ = fhn_run(None, hidden=12, identity=False)
    assert any("discarding checkpoint" in m and "does not fit" in m for m in lines)
    assert res.resumed_from is None and res.history == fresh.history


def test_unreadable_checkpoint_is_discarded(tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Preempted):
        fhn_run(ckpt, stop_at=4)
    data = (ckpt / CHECKPOINT_NAME).read_bytes()
    (ckpt / CHECKPOINT_NAME).write_bytes(data[: len(data) // 2])
    res, lines = fhn_run(ckpt)
    assert res.resumed_from is None and res.steps_done == 12
    assert any("discarding checkpoint" in m and "unreadable" in m for m in lines)


# ---- constant-size checkpoints, snapshots in an append-only side file -------------------------


def test_eos_checkpoint_size_stays_constant_over_a_run(tmp_path):
    from otgap.data.classification import ClassificationData
    from otgap.data.digits import load_digits
    from otgap.train.eos import EosSettings, train_eos

    full = load_digits()
    data = ClassificationData(
        name="digits",
        x_train=full.x_train[:96],
        y_train=full.y_train[:96],
        x_test=full.x_test[:24],
        y_test=full.y_test[:24],
        n_classes=10,
    )
    s = EosSettings(
        model="mlp", optimizer="sgd", lr=0.05, loss="mse", seed=0,
        model_hyper={"hidden": [32]}, epochs=8, batch_size=32, eval_every=12, eig_every=0,
        n_snapshots=25, checkpoint_every=1, eig_subset=16,
    )  # fmt: skip
    ckpt = tmp_path / "ckpt"
    sizes = []

    def record(step):  # called after each update, before that step's checkpoint is written
        if (ckpt / CHECKPOINT_NAME).exists():
            sizes.append((ckpt / CHECKPOINT_NAME).stat().st_size)

    res = train_eos(data, s, checkpoint_dir=ckpt, callback=record)
    assert len(sizes) == 23 and res.snapshots.shape[0] == 25
    assert max(sizes) <= 1.10 * sizes[0], sizes
    # the snapshots went to the side file instead: one record per snapshot but the final one
    n = res.summary["n_params"]
    assert (ckpt / SNAPSHOTS_NAME).stat().st_size == 24 * (16 + 4 * n)
    reference = train_eos(data, s)
    np.testing.assert_array_equal(res.snapshots, reference.snapshots)
    clear_checkpoint(ckpt)
    assert not (ckpt / SNAPSHOTS_NAME).exists() and not (ckpt / CHECKPOINT_NAME).exists()


def test_snapshot_file_is_truncated_to_the_checkpoint_on_resume(tmp_path):
    """A crash after a checkpoint leaves snapshots of later steps in the side file; the resumed
    run must drop them, not keep them beside its own."""
    model = torch.nn.Linear(2, 1)

    def run(tag: float, crash_at=None):
        snaps = SnapshotLog()

        def step_fn(i):
            snaps.add(i, torch.full((3,), tag + i))
            if crash_at is not None and i == crash_at:
                raise RuntimeError("killed")
            return 0.5

        res = train_loop(step_fn=step_fn, total_steps=10, seed=0, stateful={"m": model},
                         checkpoint_dir=tmp_path, checkpoint_every=4, snapshots=snaps,
                         log=lambda m: None)  # fmt: skip
        return res, snaps

    with pytest.raises(RuntimeError):
        run(100.0, crash_at=6)  # checkpoint at step 4; snapshots of steps 4, 5, 6 written after
    res, snaps = run(200.0)
    assert res.resumed_from == 4
    got = snaps.load()
    assert sorted(got) == list(range(10))
    assert (tmp_path / SNAPSHOTS_NAME).stat().st_size == 10 * (16 + 4 * 3)
    for i in range(10):  # steps before the checkpoint from the first run, the rest from the second
        assert torch.equal(got[i], torch.full((3,), (100.0 if i < 4 else 200.0) + i))


# ---- file modes and byte-identical model files ------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_result_files_get_the_mode_of_the_umask(tmp_path, umask, mode):
    from otgap.plots.style import save_figure

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_npz(tmp_path / "a.npz", x=np.zeros(3))
        write_csv(tmp_path / "a.csv", pd.DataFrame({"x": [1]}))
        write_text(tmp_path / "a.txt", "x")
        write_torch(tmp_path / "a.pt", {"x": torch.zeros(2)})
        import matplotlib.pyplot as plt

        fig = plt.figure()
        save_figure(fig, tmp_path / "a.png", tmp_path / "a.pdf")
        plt.close(fig)
    finally:
        os.umask(old)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 7
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == mode, f


def test_model_files_are_byte_identical_across_identical_runs(tmp_path):
    from otgap.data.classification import ClassificationData
    from otgap.data.digits import load_digits
    from otgap.train.eos import EosSettings, train_eos, write_outputs

    full = load_digits()
    data = ClassificationData("digits", full.x_train[:32], full.y_train[:32], full.x_test[:8],
                              full.y_test[:8], 10)  # fmt: skip
    s = EosSettings(model="mlp", optimizer="sgd", lr=0.05, loss="mse", seed=1,
                    model_hyper={"hidden": [8]}, epochs=1, batch_size=16, eval_every=1,
                    eig_every=0, n_snapshots=2, eig_subset=16)  # fmt: skip
    for run in ("a", "b"):
        res = train_eos(data, s)
        out = tmp_path / run
        write_outputs(res, history=out / "history.csv", snapshots=out / "snapshots.npz",
                      model=out / "model.pt", run_json=out / "run.json", provenance={})  # fmt: skip
        seed_everything(1)
        save_sequence_model(out / "seq.pt", "lstm_dt", {"hidden": 4},
                            build_sequence_model("lstm_dt", hidden=4))  # fmt: skip
    for name in ("model.pt", "seq.pt", "snapshots.npz", "history.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # and the file still loads as before
    state = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert set(state) == {"net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"}


# ---- an unreadable input marks itself for rebuild ---------------------------------------------


def test_unreadable_input_is_set_aside_for_rebuild(tmp_path, capsys):
    good = tmp_path / "results" / "dataset.npz"
    write_npz(good, x=np.arange(100.0))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk or a killed copy
    smk = SimpleNamespace(rule="fhn_train", input=[str(good)], output=[], log=[], threads=1)
    with pytest.raises(UnreadableInput) as info, job(smk):
        read_npz(good)
    assert info.value.path == good
    assert not good.exists()  # missing now: the next run rebuilds it
    aside = list(good.parent.glob(".dataset.npz.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == data[: len(data) // 2]  # not deleted
    err = capsys.readouterr().err
    assert str(good) in err and str(aside[0]) in err and "run the workflow again" in err


def test_unreadable_file_that_is_not_a_declared_input_is_left_in_place(tmp_path, capsys):
    bad = tmp_path / "other.npz"
    bad.write_bytes(b"not a zip")
    smk = SimpleNamespace(rule="x", input=[], output=[], log=[], threads=1)
    with pytest.raises(UnreadableInput), job(smk):
        read_npz(bad)
    assert bad.exists() and "fix or remove it by hand" in capsys.readouterr().err
