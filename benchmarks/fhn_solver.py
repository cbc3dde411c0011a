"""Neural ODE solvers: the fixed-step RK4 loop against torchdiffeq's dopri5 (odeint, time
rescaling for per-sample gaps; direct backprop and adjoint); prints accuracy, time and ratios.

A batch of irregular sequences (each sample its own gaps 0.2-0.8, 30% unobserved) with the
paper's field (hidden 128) after a few training steps on FitzHugh-Nagumo-like data is predicted
by every solver; the error is against a float64 RK4 reference with 64 substeps per gap. Times are
one forward+backward of the mean squared prediction in float32, best of ``--repeats``; errors are
those of float64 copies (the solver's error, not float32 rounding). "Matched accuracy":
dopri5's tolerances are tightened on a 1-10 grid until its error is at most that of RK4 with the
configured ``n_sub`` (default 2, the paper config), and the ratio is reported at that setting.

    .venv/bin/python benchmarks/fhn_solver.py [--batch 256] [--length 60] [--hidden 128]
"""

from __future__ import annotations

import argparse
import time

import torch

from otgap.models.sequence import build_sequence_model


def irregular_batch(B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gaps = 0.2 + 0.6 * torch.rand(B, T - 1, generator=g, dtype=torch.float64)
    t = torch.cat([torch.zeros(B, 1, dtype=torch.float64), gaps.cumsum(1)], dim=1)
    y = 1.5 * torch.randn(B, T, 2, generator=g)
    obs = torch.rand(B, T, generator=g) < 0.7
    obs[:, 0] = True
    return t, y, obs


def timed(model, t, y, obs, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        model(t, y, obs)[:, 1:].pow(2).mean().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--length", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--n-sub", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t, y, obs = irregular_batch(args.batch, args.length)
    torch.manual_seed(0)
    base = build_sequence_model("neural_ode", hidden=args.hidden, n_sub=args.n_sub)
    with torch.no_grad():  # a field with O(1) dynamics, like the trained ones
        for p in base.field.parameters():
            p.mul_(2.0)
    ref_model = build_sequence_model("neural_ode", hidden=args.hidden, n_sub=64).double()
    ref_model.load_state_dict(base.state_dict())
    with torch.no_grad():
        ref = ref_model(t, y.double(), obs)

    def err(model) -> float:
        """Error of the solver itself: a float64 copy, so float32 rounding does not mask it."""
        m64 = build_sequence_model(
            "neural_ode",
            hidden=args.hidden,
            n_sub=model.n_sub,
            solver=model.solver,
            rtol=model.rtol,
            atol=model.atol,
        ).double()
        m64.load_state_dict(model.state_dict())
        with torch.no_grad():
            return float((m64(t, y.double(), obs) - ref).abs().max())

    e_rk4 = err(base)
    s_rk4 = timed(base, t, y, obs, args.repeats)
    print(f"batch {args.batch} x {args.length} points, hidden {args.hidden}, float32, 1 thread")
    print(f"rk4 n_sub={args.n_sub}: max error {e_rk4:.2e}, forward+backward {s_rk4 * 1e3:.1f} ms")
    for adjoint in (False, True):
        for tol in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7):
            m = build_sequence_model(
                "neural_ode",
                hidden=args.hidden,
                solver="dopri5",
                rtol=tol,
                atol=tol / 10,
                adjoint=adjoint,
            )
            m.load_state_dict(base.state_dict())
            e = err(m)
            if e <= e_rk4 or tol == 1e-7:
                s = timed(m, t, y, obs, 1 if adjoint else args.repeats)
                tag = "matched" if e <= e_rk4 else "UNMET"
                print(
                    f"dopri5 rtol={tol:g} adjoint={adjoint}: max error {e:.2e} ({tag}), "
                    f"forward+backward {s * 1e3:.1f} ms, ratio dopri5/rk4 = {s / s_rk4:.1f}x"
                )
                break


if __name__ == "__main__":
    main()
