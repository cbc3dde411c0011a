"""Batched FitzHugh-Nagumo simulation against a loop of scipy's solve_ivp at the same accuracy.

The paper's system, 1000 trajectories with 2000 outputs at dt 0.5 (t up to ~1000). Baseline:
solve_ivp(DOP853, rtol=1e-12, atol=1e-12) one trajectory at a time; its time is measured on a
subset and extrapolated to 1000 trajectories. Accuracy of the batched RK4 is measured against the
same DOP853 solutions. Prints the speed-up; target >= 50x.

    .venv/bin/python benchmarks/fhn_simulate.py [--n 1000] [--subset 20]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy.integrate import solve_ivp

from otgap.data.fhn import simulate, system_params


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--outputs", type=int, default=2000)
    ap.add_argument("--subset", type=int, default=20, help="trajectories timed in the scipy loop")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    y0 = rng.uniform(-2.0, 2.0, size=(args.n, 2))
    t = np.arange(args.outputs) * 0.5
    p = system_params("fhn")

    def rhs(_, y):
        v, w = y
        return [v - v**3 / 3 - w + p["I"], (v + p["a"] - p["b"] * w) / p["tau"]]

    t0 = time.perf_counter()
    ours = simulate(y0, t, system="fhn")
    t_ours = time.perf_counter() - t0

    idx = np.linspace(0, args.n - 1, args.subset).astype(int)
    t0 = time.perf_counter()
    refs = [
        solve_ivp(rhs, (t[0], t[-1]), y0[i], method="DOP853", rtol=1e-12, atol=1e-12, t_eval=t).y.T
        for i in idx
    ]
    t_loop = (time.perf_counter() - t0) / args.subset * args.n
    err = max(np.abs(ours[i] - r).max() for i, r in zip(idx, refs, strict=True))

    print(f"machine: {cpu_name()}, {platform.machine()}, numpy {np.__version__}")
    print(
        f"problem: fhn, {args.n} trajectories x {args.outputs} outputs, dt 0.5, t_end {t[-1]:.0f}"
    )
    print(f"batched RK4 (otgap.data.fhn.simulate): {t_ours:8.2f} s   max error vs DOP853 {err:.2e}")
    print(
        f"solve_ivp DOP853 loop (rtol 1e-12)   : {t_loop:8.2f} s   (timed on {args.subset}, extrapolated)"
    )
    print(
        f"speed-up: {t_loop / t_ours:.1f}x  (target >= 50x; accuracy target <= 1e-6: "
        f"{'met' if err <= 1e-6 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
