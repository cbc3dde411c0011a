"""Learning-rate choice of one A.1 training cell on validation data only (rule fhn_tune).

Rule (docs/a1_protocol.md): the model is trained with the cell's own schedule (the same
``FitConfig`` as its evaluation runs, only the learning rate varies) at every learning rate of a
grid, on tuning seeds that are not evaluation seeds (their own datasets and initialisations). Each
learning rate is scored by the geometric mean over the tuning seeds of the best validation loss
(the quantity early stopping and best-weight selection already use); a seed that diverged or gave
no finite validation loss scores +inf. The lowest score wins (ties: the smaller learning rate).
A winner at the grid's edge extends the grid by one step of its ratio beyond that edge, and the
extended value is trained and scored in turn, up to ``max_extend`` times; a choice still at an
edge after that is reported as such (``at_edge``).

Only the ``train_*`` and ``val_*`` arrays (and ``n_context``) of a dataset are passed to training
(``train_val_only``), so nothing in the test split or the rollouts can influence the choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from otgap.train.sequence import FitConfig

TUNING_KEYS = ("train_t", "train_y", "train_obs", "val_t", "val_y", "val_obs", "n_context")


def train_val_only(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays training may read: the train and validation splits and the context length."""
    missing = [k for k in TUNING_KEYS if k not in data]
    if missing:
        raise KeyError(f"dataset lacks the key(s) {missing} that tuning needs")
    return {k: data[k] for k in TUNING_KEYS}


def check_grid(grid: Sequence[float]) -> list[float]:
    """Sorted, distinct, positive, >= 3 values spanning >= 10x (the protocol's minimum)."""
    values = sorted(float(x) for x in grid)
    if len(values) < 3 or len(set(values)) != len(values) or not values[0] > 0:
        raise ValueError(f"the lr grid needs >= 3 distinct positive values, got {list(grid)}")
    if values[-1] / values[0] < 10.0 * (1 - 1e-9):
        raise ValueError(f"the lr grid must span at least 10x, got {values[0]:g}..{values[-1]:g}")
    return values


def score(best_val_losses: Sequence[float]) -> float:
    """Geometric mean of the tuning seeds' best validation losses; +inf if any is not finite."""
    x = np.asarray(best_val_losses, dtype=np.float64)
    if x.size == 0 or not np.all(np.isfinite(x)) or not np.all(x > 0):
        return math.inf
    return float(np.exp(np.mean(np.log(x))))


def choose(scores: Mapping[float, float]) -> float:
    """The learning rate of the lowest score (the smaller lr on a tie)."""
    return min(sorted(scores), key=lambda lr: (scores[lr], lr))


def tune_lr(
    run_lr: Callable[[float], Sequence[float]],
    grid: Sequence[float],
    *,
    max_extend: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Choose a learning rate: ``run_lr(lr)`` trains the tuning seeds at ``lr`` and returns their
    best validation losses. Returns the grid actually run (sorted), each lr's per-seed losses
    and score, the choice, how many extensions were made and whether the choice is at an edge."""
    log = log or (lambda msg: None)
    values = check_grid(grid)
    ratio_low = values[1] / values[0]
    ratio_high = values[-1] / values[-2]
    losses: dict[float, list[float]] = {}
    scores: dict[float, float] = {}

    def run(lr: float) -> None:
        vals = [float(v) for v in run_lr(lr)]
        losses[lr], scores[lr] = vals, score(vals)
        log(f"lr {lr:g}: best validation losses {vals}, score {scores[lr]:.6g}")

    for lr in values:
        run(lr)
    extended = 0
    while True:
        best = choose(scores)
        ordered = sorted(scores)
        at_low, at_high = best == ordered[0], best == ordered[-1]
        if not (at_low or at_high) or extended >= int(max_extend):
            break
        new = best / ratio_low if at_low else best * ratio_high
        new = float(f"{new:.6g}")
        log(f"choice {best:g} at the grid's {'lower' if at_low else 'upper'} edge: adding {new:g}")
        run(new)
        extended += 1
    best = choose(scores)
    ordered = sorted(scores)
    return {
        "grid": ordered,
        "initial_grid": values,
        "val_losses": {f"{lr:g}": losses[lr] for lr in ordered},
        "scores": {f"{lr:g}": scores[lr] for lr in ordered},
        "chosen_lr": best,
        "extended": extended,
        "at_edge": best in (ordered[0], ordered[-1]),
        "criterion": "geometric mean over tuning seeds of the best validation loss",
    }


def tune_cell(
    name: str,
    model_kwargs: Mapping[str, Any],
    datas: Sequence[Mapping[str, np.ndarray]],
    cfg: FitConfig,
    seeds: Sequence[int],
    grid: Sequence[float],
    *,
    max_extend: int = 2,
    true_field: Callable | None = None,
    checkpoint_dir: str | Path | None = None,
    identity: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    label: str = "fhn-tune",
    device: str = "cpu",
) -> dict[str, Any]:
    """``tune_lr`` for model ``name``: each lr trains every tuning seed (dataset ``datas[i]`` for
    ``seeds[i]``, reduced to its train and validation splits) with ``cfg`` at that lr, batched
    over the seeds as the evaluation runs are; ``checkpoint_dir`` keeps one resumable
    sub-directory per lr."""
    from otgap.train.batched import train_seeds

    clean = [train_val_only(d) for d in datas]

    def run_lr(lr: float) -> list[float]:
        sub = None if checkpoint_dir is None else Path(checkpoint_dir) / f"lr={lr:g}"
        ident = None if identity is None else {**dict(identity), "lr": lr}
        runs = train_seeds(
            name, model_kwargs, clean, replace(cfg, lr=float(lr)), seeds,
            true_field=true_field, checkpoint_dir=sub, identity=ident, log=log or print,
            label=f"{label}/lr={lr:g}", device=device,
        )  # fmt: skip
        out = []
        for run in runs:
            res = run.result
            if res is None or res.diverged:
                out.append(math.inf)
            else:
                out.append(float(res.extras.get("best_val_loss", math.inf)))
        return out

    result = tune_lr(run_lr, grid, max_extend=max_extend, log=log)
    result["tuning_seeds"] = [int(s) for s in seeds]
    return result
