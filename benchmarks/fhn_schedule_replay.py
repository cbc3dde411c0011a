"""Replay early stopping on finished A.1 runs: what a shorter patience or a lower epoch bound
would have cost and kept, from each run's validation history (no training).

Early stopping's patience and the epoch bound do not change a run's trajectory before it stops
(the lr schedule depends on the validation losses only), so from a history recorded with
patience P and bound E every (P' <= P, E' <= E) can be replayed exactly: the run stops at the
first evaluation epoch e with e - max(best epoch so far, ramp) >= P' (or at E'), and keeps the best
weights seen until then. Printed per learned cell: epochs run, best validation loss relative to
the recorded run's, and the share of late-best runs (best epoch in the last 10 % of E').

    .venv/bin/python benchmarks/fhn_schedule_replay.py results/quick --patience 300 150 100 \\
        --bounds 1000 600
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

SKIP = ("neural_ode_oracle", "last_observation")  # references: their own settings


def replay(hist: pd.DataFrame, patience: int, bound: int, ramp: int) -> tuple[int, int, float]:
    """(stopped epoch, best epoch, best validation loss) under ``patience`` and ``bound``."""
    best_v, best_e = np.inf, 0
    for e, v in zip(hist["epoch"].to_numpy(float), hist["val_loss"].to_numpy(float), strict=True):
        e = int(round(e))
        if e > bound:
            return bound, best_e, best_v
        if v < best_v:
            best_v, best_e = v, e
        if e < bound and e - max(best_e, ramp) >= patience:
            return e, best_e, best_v
    return int(round(hist["epoch"].iloc[-1])), best_e, best_v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a run's results folder, e.g. results/quick")
    ap.add_argument("--patience", type=int, nargs="+", default=[300, 150, 100])
    ap.add_argument("--bounds", type=int, nargs="+", default=[1000, 600])
    ap.add_argument("--ramp", type=int, default=30, help="fhn.train.horizon_ramp_epochs")
    args = ap.parse_args()
    rows = []
    for run in sorted(Path(args.root).glob("fhn/system=*/condition=*/model=*/seed=*/run.json")):
        parts = dict(p.split("=", 1) for p in run.parent.parts if "=" in p)
        if parts["model"] in SKIP:
            continue
        info = json.loads(run.read_text())
        hist = pd.read_csv(run.parent / "history.csv")
        full = float(info["best_val_loss"])
        for p in args.patience:
            for b in args.bounds:
                stop, best, val = replay(hist, p, b, args.ramp)
                rows.append({**parts, "patience": p, "bound": b, "epochs": stop,
                             "late": best >= 0.9 * b, "val_ratio": val / full})  # fmt: skip
    if not rows:
        print(f"no finished learned runs under {args.root}/fhn")
        return
    f = pd.DataFrame(rows)
    by = ["patience", "bound"]
    summary = f.groupby(by).agg(
        epochs_sum=("epochs", "sum"), late_share=("late", "mean"),
        val_ratio_gmean=("val_ratio", lambda x: float(np.exp(np.mean(np.log(x))))),
        val_ratio_max=("val_ratio", "max"),
    )  # fmt: skip
    print(summary.to_string())
    cells = f.groupby([*by, "system", "condition", "model"]).agg(
        epochs=("epochs", "sum"), late=("late", "mean")
    )
    print(cells.to_string())


if __name__ == "__main__":
    main()
