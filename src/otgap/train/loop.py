"""The one training loop every training stage uses.

Readable top to bottom: seed, resume from the last checkpoint if there is one, then for each step
call the stage's ``step_fn``, stop cleanly on a non-finite loss (divergence is a result), evaluate
every ``eval_every`` steps, checkpoint every ``checkpoint_every`` steps and when SLURM (or a user)
sends SIGTERM/SIGUSR1. The loop knows nothing about models or data: the stage hands it callables
and the objects whose ``state_dict`` must survive a restart.

A checkpoint belongs to one job: it stores the job's ``identity`` (its parameters and the digests
of the code it runs) and is only resumed by a job with the same identity. A checkpoint written by
other parameters or other code, an unreadable one, or one whose tensors do not fit the model is
discarded with a log line that says why, and the run starts fresh: never a silent resume of a
stale state, never a crash loop.

Checkpoints hold only what resuming needs, so their size stays constant over a run; parameter
snapshots, which grow with the run, go to an append-only side file (``SnapshotLog``) that a resume
truncates to the length the checkpoint recorded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import signal
import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgap.io import ensure_writable_dir, write_torch
from otgap.train.determinism import rng_state, seed_everything, set_rng_state

CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOTS_NAME = "snapshots.bin"
# Bumped when the checkpoint's layout changes: an older checkpoint is then discarded, not misread.
CHECKPOINT_FORMAT = 2


class Preempted(RuntimeError):
    """Raised after a checkpoint was written because the job received SIGTERM or SIGUSR1."""


@dataclass
class LoopResult:
    history: list[dict[str, Any]]
    steps_done: int
    diverged: bool
    diverged_step: int | None
    resumed_from: int | None
    extras: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    # (step, seconds since the loop began) after each evaluation: the loop's time line, so a
    # planner can tell its first period (cold caches, a cold first estimate) from the steady ones
    marks: list[tuple[int, float]] = field(default_factory=list)


def timing_marks(marks: list[tuple[int, float]], keep: int = 3) -> list[list[float]]:
    """The first ``keep`` marks and the last one, as JSON-ready pairs (for run records)."""
    chosen = list(marks[:keep]) + (list(marks[-1:]) if len(marks) > keep else [])
    return [[int(step), round(float(sec), 4)] for step, sec in chosen]


class _SignalFlag:
    """Turns SIGTERM/SIGUSR1 into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.raised: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _SignalFlag:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread: signals cannot be caught here
                pass
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.raised = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def normalise_identity(identity: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """The identity as plain JSON data (a string becomes ``{"id": string}``)."""
    if identity is None:
        return None
    if isinstance(identity, str):
        return {"id": identity}
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


def identity_digest(identity: Mapping[str, Any] | None) -> str | None:
    if identity is None:
        return None
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(obj):
            out.update(_flatten(obj[key], f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: obj}


def identity_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> str:
    """What differs between two identities, as ``key: old -> new`` items (at most five)."""
    if old is None or new is None:
        return "the checkpoint has no job identity" if old is None else "no identity given"
    a, b = _flatten(old), _flatten(new)
    diffs = [
        f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, "<absent>") != b.get(k, "<absent>")
    ]
    more = f" (and {len(diffs) - 5} more)" if len(diffs) > 5 else ""
    return "; ".join(diffs[:5]) + more if diffs else "identity digests differ"


class SnapshotLog:
    """Parameter snapshots of a run, kept in an append-only file beside the checkpoint.

    Without a file (no checkpoint directory) the snapshots stay in memory. With one, ``add``
    appends a record (int64 step, int64 length, float32 values) and flushes it; a checkpoint
    records the file's length, and a resume truncates the file to that length, so the file always
    holds exactly the snapshots taken before the resumed step.
    """

    _HEADER = struct.Struct("<qq")

    def __init__(self) -> None:
        self._memory: dict[int, torch.Tensor] = {}
        self.path: Path | None = None

    def attach(self, path: Path, keep_bytes: int) -> None:
        """Use the file ``path`` from now on, truncated to its first ``keep_bytes`` bytes."""
        self._memory.clear()
        with open(path, "ab") as fh:
            fh.truncate(keep_bytes)
        self.path = path

    def add(self, step: int, values: torch.Tensor) -> None:
        array = values.detach().to("cpu", torch.float32).reshape(-1).numpy()
        if self.path is None:
            self._memory[int(step)] = torch.from_numpy(array.copy())
            return
        with open(self.path, "ab") as fh:
            fh.write(self._HEADER.pack(int(step), array.size))
            fh.write(array.astype("<f4").tobytes())

    def size(self) -> int:
        """Bytes written so far (synced to disk), for the checkpoint to record."""
        if self.path is None or not self.path.exists():
            return 0
        with open(self.path, "ab") as fh:
            os.fsync(fh.fileno())
        return self.path.stat().st_size

    def load(self) -> dict[int, torch.Tensor]:
        """Every snapshot as ``{step: float32 vector}``."""
        if self.path is None:
            return dict(self._memory)
        out: dict[int, torch.Tensor] = {}
        data = self.path.read_bytes() if self.path.exists() else b""
        pos = 0
        while pos < len(data):
            step, n = self._HEADER.unpack_from(data, pos)
            pos += self._HEADER.size
            out[step] = torch.from_numpy(np.frombuffer(data, "<f4", n, pos).astype(np.float32))
            pos += 4 * n
        return out


def save_checkpoint(
    path: Path,
    step: int,
    stateful: Mapping[str, Any],
    history: list,
    extras: dict,
    identity: Mapping[str, Any] | None = None,
    snapshots: SnapshotLog | None = None,
) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "identity": identity,
        "identity_digest": identity_digest(identity),
        "step": step,
        "state": {name: obj.state_dict() for name, obj in stateful.items()},
        "rng": rng_state(),
        "history": history,
        "extras": extras,
        "snapshot_bytes": snapshots.size() if snapshots is not None else 0,
    }
    write_torch(path, payload)


class StaleCheckpoint(RuntimeError):
    """A checkpoint that this job must not resume from (the message says why)."""


def load_checkpoint(
    path: Path,
    stateful: Mapping[str, Any],
    identity: Mapping[str, Any] | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Restore ``stateful`` and the RNG states from ``path``.

    Raises ``StaleCheckpoint`` (and leaves every object as it was) when the file cannot be read,
    was written by another job identity or format, does not fit the objects, or ``check(payload)``
    raises it.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, pickle error, disk error ...
        raise StaleCheckpoint(f"unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise StaleCheckpoint(f"format {got!r}, this code writes format {CHECKPOINT_FORMAT}")
    if identity is not None and payload.get("identity_digest") != identity_digest(identity):
        raise StaleCheckpoint(identity_changes(payload.get("identity"), identity))
    if check is not None:
        check(payload)
    saved = {name: copy.deepcopy(obj.state_dict()) for name, obj in stateful.items()}
    try:
        missing = sorted(set(stateful) - set(payload["state"]))
        if missing:
            raise KeyError(f"no state for {missing}")
        for name, obj in stateful.items():
            obj.load_state_dict(payload["state"][name])
        set_rng_state(payload["rng"])
    except Exception as exc:  # size mismatch, missing keys, a changed optimizer ...
        for name, obj in stateful.items():
            obj.load_state_dict(saved[name])
        first = str(exc).strip().splitlines()[:2]
        raise StaleCheckpoint(
            f"does not fit this job ({type(exc).__name__}: {' '.join(first)})"
        ) from exc
    return payload


def train_loop(
    *,
    step_fn: Callable[[int], float],
    total_steps: int,
    seed: int,
    stateful: Mapping[str, Any],
    eval_fn: Callable[[int], Mapping[str, Any]] | None = None,
    eval_every: int = 0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    extras: dict[str, Any] | None = None,
    log_every: int = 0,
    label: str = "train",
    log: Callable[[str], None] | None = None,
    seed_fn: Callable[[int], None] = seed_everything,
    identity: Mapping[str, Any] | str | None = None,
    snapshots: SnapshotLog | None = None,
    should_stop: Callable[[int], bool] | None = None,
) -> LoopResult:
    """Run ``step_fn(step)`` for ``step`` in ``[start, total_steps)`` and return the history.

    - ``stateful``: objects with ``state_dict``/``load_state_dict`` (model, optimizer, scheduler)
      saved in checkpoints. Build them *before* calling, after seeding with the same seed, so that
      initialisation is reproducible; the loop seeds again and resumes RNG states from checkpoints.
    - ``step_fn(step)`` performs one optimisation step and returns its loss as a float.
    - ``eval_fn(step)`` returns a record (a flat dict of numbers) appended to the history; it is
      called at step 0 (before any update), every ``eval_every`` steps, and after the last step.
    - ``extras``: a dict the stage may mutate (e.g. the curvature warm-start vector); it is saved in
      checkpoints and restored on resume.
    - ``should_stop(step)`` (optional, e.g. early stopping) is asked after each evaluation; True
      ends the loop there (``steps_done`` tells where).
    - Divergence: a non-finite loss ends the loop; ``diverged_step`` records the step, the history
      gets a final record with ``diverged=True``.
    - ``identity``: what makes this job this job (its parameters, digests of its code; any JSON
      data or a string). A checkpoint is resumed only by a job of the same identity; otherwise
      it is discarded with a log line naming what changed.
    - ``snapshots``: a ``SnapshotLog`` the stage adds parameter snapshots to; with a checkpoint
      directory it is kept in an append-only file there, outside the constant-size checkpoint.
    """
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    extras = extras if extras is not None else {}
    history: list[dict[str, Any]] = []
    start = 0
    resumed_from = None
    seed_fn(seed)

    identity = normalise_identity(identity)
    ckpt_path = None
    if checkpoint_dir is not None:
        ckpt_path = ensure_writable_dir(checkpoint_dir) / CHECKPOINT_NAME
        snap_path = ckpt_path.parent / SNAPSHOTS_NAME
        payload = None

        def snapshots_present(payload: dict[str, Any]) -> None:
            have = snap_path.stat().st_size if snap_path.exists() else 0
            if snapshots is not None and have < int(payload.get("snapshot_bytes", 0)):
                raise StaleCheckpoint(f"its snapshot file {snap_path} is shorter than recorded")

        if ckpt_path.exists():
            try:
                payload = load_checkpoint(ckpt_path, stateful, identity, snapshots_present)
            except StaleCheckpoint as exc:
                log(f"[{label}] discarding checkpoint {ckpt_path}: {exc}; starting fresh")
                payload = None
                seed_fn(seed)
        if snapshots is not None:
            snapshots.attach(snap_path, int(payload["snapshot_bytes"]) if payload else 0)
        if payload is not None:
            start = resumed_from = int(payload["step"])
            history = list(payload["history"])
            extras.update(payload["extras"])
            log(f"[{label}] resumed from checkpoint at step {start}/{total_steps}")

    marks: list[tuple[int, float]] = []

    def evaluate(step: int, **flags: Any) -> None:
        if eval_fn is not None:
            record = {"step": step, **dict(eval_fn(step)), **flags}
            history.append(record)
            sharp, thr = record.get("sharpness"), record.get("threshold")
            if (
                isinstance(sharp, int | float)
                and isinstance(thr, int | float)
                and thr
                and (math.isfinite(sharp))
            ):
                # the Edge-of-Stability reading at each measurement, in the job's log
                log(
                    f"[{label}] step {step}/{total_steps} sharpness {sharp:.4g} / threshold "
                    f"{thr:.4g} = {sharp / thr:.3f}"
                )
        marks.append((step, time.perf_counter() - t0))

    t0 = time.perf_counter()
    diverged_step = None
    with _SignalFlag() as sig:
        if start == 0:
            evaluate(0, diverged=False)
        step = start
        while step < total_steps:
            loss = float(step_fn(step))
            step += 1
            if not math.isfinite(loss):
                diverged_step = step
                log(f"[{label}] diverged at step {step}: loss={loss}")
                evaluate(step, diverged=True)
                break
            if log_every and (step % log_every == 0 or step == total_steps):
                rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
                log(f"[{label}] step {step}/{total_steps} loss={loss:.6g} ({rate:.1f} steps/s)")
            is_last = step == total_steps
            if is_last or (eval_every and step % eval_every == 0):
                evaluate(step, diverged=False)
                if not is_last and should_stop is not None and should_stop(step):
                    log(f"[{label}] stopped early at step {step}/{total_steps}: loss={loss:.6g}")
                    break
            if ckpt_path is not None and not is_last:
                if sig.raised is not None or (checkpoint_every and step % checkpoint_every == 0):
                    save_checkpoint(ckpt_path, step, stateful, history, extras, identity, snapshots)
            if sig.raised is not None:
                log(f"[{label}] signal {sig.raised} received: checkpoint written at step {step}")
                raise Preempted(f"stopped by signal {sig.raised} at step {step}; rerun to resume")
    wall = time.perf_counter() - t0
    return LoopResult(
        history=history,
        steps_done=step if diverged_step is None else diverged_step,
        diverged=diverged_step is not None,
        diverged_step=diverged_step,
        resumed_from=resumed_from,
        extras=extras,
        wall_seconds=wall,
        marks=marks,
    )


def clear_checkpoint(checkpoint_dir: str | Path | None) -> None:
    """Remove the checkpoint and its snapshot file once the stage has written its final outputs."""
    if checkpoint_dir is None:
        return
    for name in (CHECKPOINT_NAME, SNAPSHOTS_NAME):
        path = Path(checkpoint_dir) / name
        if path.exists():
            path.unlink()
