"""The one training loop every training stage uses.

Readable top to bottom: seed, resume from the last checkpoint if there is one, then for each step
call the stage's ``step_fn``, stop cleanly on a non-finite loss (divergence is a result), evaluate
every ``eval_every`` steps, checkpoint every ``checkpoint_every`` steps and when SLURM (or a user)
sends SIGTERM/SIGUSR1. The loop knows nothing about models or data: the stage hands it callables
and the objects whose ``state_dict`` must survive a restart.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from otgap.io import atomic_path, ensure_writable_dir
from otgap.train.determinism import rng_state, seed_everything, set_rng_state

CHECKPOINT_NAME = "checkpoint.pt"


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


def save_checkpoint(
    path: Path, step: int, stateful: Mapping[str, Any], history: list, extras: dict
) -> None:
    payload = {
        "step": step,
        "state": {name: obj.state_dict() for name, obj in stateful.items()},
        "rng": rng_state(),
        "history": history,
        "extras": extras,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, stateful: Mapping[str, Any]) -> dict[str, Any]:
    payload = torch.load(path, map_location="cpu", weights_only=False)
    for name, obj in stateful.items():
        obj.load_state_dict(payload["state"][name])
    set_rng_state(payload["rng"])
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
    """
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    extras = extras if extras is not None else {}
    history: list[dict[str, Any]] = []
    start = 0
    resumed_from = None
    seed_fn(seed)

    ckpt_path = None
    if checkpoint_dir is not None:
        ckpt_path = ensure_writable_dir(checkpoint_dir) / CHECKPOINT_NAME
        if ckpt_path.exists():
            payload = load_checkpoint(ckpt_path, stateful)
            start = resumed_from = int(payload["step"])
            history = list(payload["history"])
            extras.update(payload["extras"])
            log(f"[{label}] resumed from checkpoint at step {start}/{total_steps}")

    def evaluate(step: int, **flags: Any) -> None:
        if eval_fn is None:
            return
        record = {"step": step, **dict(eval_fn(step)), **flags}
        history.append(record)

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
                    log(f"[{label}] stopped early at step {step}/{total_steps}")
                    break
            if ckpt_path is not None and not is_last:
                if sig.raised is not None or (checkpoint_every and step % checkpoint_every == 0):
                    save_checkpoint(ckpt_path, step, stateful, history, extras)
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
    )


def clear_checkpoint(checkpoint_dir: str | Path | None) -> None:
    """Remove the checkpoint once the stage has written its final outputs."""
    if checkpoint_dir is None:
        return
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if path.exists():
        path.unlink()
