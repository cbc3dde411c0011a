"""Diverged runs in the EoS table and comparison figure: no step-0 numbers shown as final, the
curves end with a marker, and the y-range comes from the runs that did not diverge."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from otgap.plots.eos import comparison_figure  # noqa: E402
from otgap.tables.eos import summary_table  # noqa: E402

GROUP = {"dataset": "digits", "model": "mlp", "loss": "mse"}


def summary_row(optimizer, lr, seed, acc, max_ratio, diverged_step=None):
    return {
        **GROUP, "optimizer": optimizer, "lr": lr, "seed": seed, "threshold": 2 / lr,
        "final_test_acc": acc, "max_ratio": max_ratio, "final_ratio": max_ratio,
        "late_ratio_median": max_ratio, "n_above": 0, "n_measurements": 5,
        "frac_above": 0.0, "diverged": diverged_step is not None,
        "diverged_step": -1 if diverged_step is None else diverged_step, "steps": 100,
        "final_train_loss": 0.1,
    }  # fmt: skip


SUMMARY = pd.DataFrame(
    [
        summary_row("sgd", 0.1, 0, 0.90, 0.8),
        summary_row("sgd", 0.1, 1, 0.80, 1.0),
        # seed 0 blew up at step 37: its last finite accuracy is the step-0 one (0.10)
        summary_row("gd", 0.5, 0, 0.10, 280.0, diverged_step=37),
        summary_row("gd", 0.5, 1, 0.70, 1.5),
        summary_row("gd", 2.0, 0, 0.10, 150.0, diverged_step=3),
        summary_row("gd", 2.0, 1, 0.12, 90.0, diverged_step=5),
    ]
)


def row_of(tex, optimizer, lr):
    return next(line for line in tex.splitlines() if line.startswith(f"{optimizer} & {lr:g} &"))


def test_table_leaves_diverged_seeds_out_of_the_statistics():
    tex = summary_table(SUMMARY)
    row = row_of(tex, "gd", 0.5)
    cells = [c.strip() for c in row.rstrip("\\ ").split("&")]
    # columns: optimizer, lr, threshold, n, steps, test acc, late ratio, share above, BS ...
    assert cells[3] == "2" and cells[4] == "100"
    assert cells[5] == "$70.0$"  # seed 1 only, not the mean with seed 0's step-0 accuracy (40.0)
    assert cells[6] == "$1.50$"  # not 280; one seed: no interval
    assert cells[-1] == "1/2 (at step 37)"
    sgd = [c.strip() for c in row_of(tex, "sgd", 0.1).rstrip("\\ ").split("&")]
    assert sgd[5] == f"${85.0:.1f} \\pm {np.std([90.0, 80.0], ddof=1):.1f}$" and sgd[-1] == "0/2"


def test_table_says_diverged_where_every_seed_diverged():
    cells = [c.strip() for c in row_of(summary_table(SUMMARY), "gd", 2.0).rstrip("\\ ").split("&")]
    assert cells[5:-1] == ["diverged at step 3, 5"] * 5
    assert cells[-1] == "2/2 (at step 3, 5)"


def trajectories():
    rows = []
    for _, r in SUMMARY.iterrows():
        last = r["diverged_step"] if r["diverged"] else 100
        for step in range(0, last + 1, 5 if last > 10 else 1):
            blown = r["diverged"] and step >= last - 5
            ratio = r["max_ratio"] if blown else min(r["max_ratio"], 0.5 + step / 100)
            rows.append(
                {
                    **{k: r[k] for k in ("optimizer", "lr", "seed")},
                    **GROUP,
                    "step": step,
                    "ratio": ratio,
                    "diverged": bool(r["diverged"] and step == last),
                }
            )
    return pd.DataFrame(rows)  # fmt: skip


def test_comparison_y_range_comes_from_the_runs_that_did_not_diverge():
    import matplotlib.pyplot as plt

    fig = comparison_figure(trajectories(), SUMMARY)
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    # every stable value shown; the blown-up values of the diverged runs (90 and more) are not
    stable = trajectories().merge(SUMMARY[~SUMMARY["diverged"]][["optimizer", "lr", "seed"]])
    assert ax.get_yscale() == "log"  # ratios on a log axis: every curve near 1 stays visible
    assert 0 < bottom <= stable["ratio"].min() and stable["ratio"].max() <= top < 5
    # every diverged run's curve ends with a cross at its last value
    crosses = [ln for ln in ax.lines if ln.get_marker() == "x"]
    traj = trajectories()
    ends = set()
    for _, r in SUMMARY[SUMMARY["diverged"]].iterrows():
        run = traj[(traj["optimizer"] == r["optimizer"]) & (traj["lr"] == r["lr"])]
        last = run[run["seed"] == r["seed"]].iloc[-1]
        ends.add((round(last["step"] / 100, 6), round(float(last["ratio"]), 6)))
    got = {
        (round(float(ln.get_xdata()[0]), 6), round(float(ln.get_ydata()[0]), 6)) for ln in crosses
    }
    assert got == ends and len(ends) == 3
    plt.close(fig)
