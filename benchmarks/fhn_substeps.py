"""How many RK4 substeps per gap the Neural ODE needs: the integrator's own error floor.

The Neural ODE and its oracle integrate their field with ``n_sub`` fixed RK4 substeps per gap, and
a training step costs in proportion to ``n_sub``. This benchmark puts the TRUE FitzHugh-Nagumo
field (forced: with the drive evaluated at every stage's absolute time) into the model's
integrator and scores it exactly as a trained model is scored: interpolation RMSE on the held-out
test points and extrapolation RMSE over the horizon, on the test split of each condition's
dataset (same generator, sizes and seeds as the config; the rollouts are not built). What remains
is the error of the integration alone, the floor no trained model can go below, per ``n_sub``;
it is printed next to the relative cost of a training step (measured forward+backward time of
the config-sized learned model). Compare the floors with the learned models' errors (quick run:
interpolation RMSE 0.03-0.09) to choose ``n_sub``.

    .venv/bin/python benchmarks/fhn_substeps.py [--configfile config/quick.yaml] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from otgap.data.fhn import drive_period, system_params, vector_field
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.metrics.errors import masked_rmse
from otgap.metrics.forecast import predict
from otgap.models.sequence import build_sequence_model
from otgap.plan import load_config


class ExactField(nn.Module):
    """The true FitzHugh-Nagumo right-hand side in the learned field's place: f(y, drive)."""

    def __init__(self, system: str, params: dict) -> None:
        super().__init__()
        self.p = system_params(system, params)

    def forward(self, y: torch.Tensor, drive: torch.Tensor | None = None) -> torch.Tensor:
        f = vector_field(
            0.0, y, "fhn", {k: v for k, v in self.p.items() if k != "amp"} | {"amp": 0}
        )
        if drive is not None and drive.shape[-1]:
            # drive = (cos, sin) of the phase omega * t: the forcing term is amp * cos(omega t)
            f = f + torch.stack([self.p["amp"] * drive[..., 0], torch.zeros_like(y[..., 1])], -1)
        return f


def floor(
    system: str, params: dict, arrays: dict, n_sub: int, n_context: int
) -> tuple[float, float]:
    omega = system_params(system, params)["omega"] if drive_period(system, params) > 0 else 0.0
    model = build_sequence_model("neural_ode", hidden=4, n_sub=n_sub, drive_omega=omega).double()
    model.field = ExactField(system, params)
    t, y, obs = arrays["test_t"], arrays["test_y"], arrays["test_obs"].astype(bool)
    target = arrays["test_target"].astype(bool)
    y_hat = predict(model, t, y, obs, forecast_from=n_context)
    horizon = np.zeros_like(obs)
    horizon[:, n_context:] = True
    return masked_rmse(y_hat, y, target), masked_rmse(y_hat, y, horizon)


def step_seconds(n_sub: int, hidden: int, length: int, batch: int, repeats: int = 5) -> float:
    g = torch.Generator().manual_seed(0)
    model = build_sequence_model("neural_ode", hidden=hidden, n_sub=n_sub)
    gaps = 0.2 + 0.6 * torch.rand(batch, length - 1, generator=g)
    t = torch.cat([torch.zeros(batch, 1), gaps.cumsum(1)], dim=1)
    y = torch.randn(batch, length, 2, generator=g)
    obs = torch.rand(batch, length, generator=g) < 0.7
    obs[:, 0] = True
    best = float("inf")
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        model(t, y, obs)[:, 1:].pow(2).mean().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", nargs="*", default=[], help="overlays on config/config.yaml")
    ap.add_argument("--seeds", type=int, nargs="*", default=None, help="default: the config's")
    ap.add_argument("--n-sub", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--timing-only", action="store_true", help="skip the error floors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.configfile)
    fhn = config["fhn"]
    ds = dict(fhn["dataset"])
    # the rollouts are not scored here; the test split does not depend on them
    ds.update(rollout_n=1, rollout_length=ds["rollout_context"] + 1)
    seeds = fhn["seeds"] if args.seeds is None else args.seeds
    n_context = int(ds["n_context"])
    print(
        f"config run '{config['run']}': {len(seeds)} seed(s), n_test {ds['n_test']}, "
        f"{n_context}+{ds['horizon']} points, dt {ds['dt']}"
    )
    print(
        f"{'system':<12}{'condition':<11}{'n_sub':>6}{'interp RMSE':>14}{'extrap RMSE':>14}"
        "   (mean [max] over seeds)"
    )
    for system in [] if args.timing_only else fhn["systems"]:
        params = dict(fhn.get("system_params", {}).get(system, {}))
        spec = DatasetSpec(**ds, params=params)
        allowed = fhn.get("system_conditions", {}).get(system)
        for cond in fhn["conditions"]:
            if allowed is not None and cond["name"] not in allowed:
                continue
            data = [
                build_dataset(system, Condition(**cond), s, spec, 0.0, np.ones(2)) for s in seeds
            ]
            for n_sub in args.n_sub:
                res = np.array([floor(system, params, a, n_sub, n_context) for a in data])
                print(
                    f"{system:<12}{cond['name']:<11}{n_sub:>6}"
                    f"{res[:, 0].mean():>9.5f} [{res[:, 0].max():.4f}]"
                    f"{res[:, 1].mean():>9.5f} [{res[:, 1].max():.4f}]"
                )
    hidden = int(fhn["train"]["hidden"])
    length = n_context + int(ds["horizon"])
    batch = min(int(fhn["train"]["batch_size"]), int(ds["n_train"]))
    base = None
    print(
        f"\ntraining step of the learned Neural ODE (hidden {hidden}, batch {batch}, "
        f"{length} points, one thread, best of 3):"
    )
    for n_sub in args.n_sub:
        sec = step_seconds(n_sub, hidden, length, batch)
        base = sec if base is None else base
        print(
            f"  n_sub {n_sub}: {sec * 1000:8.1f} ms   ratio to n_sub {args.n_sub[0]}: "
            f"{sec / base:.2f}"
        )


if __name__ == "__main__":
    main()
