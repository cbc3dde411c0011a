"""torch.compile against eager execution: one FHN training step at paper size, per model.

One seed's model of the config (default ``config/config.yaml``: hidden 128, its model keywords, the
multi-step objective over context + horizon) takes Adam steps on minibatches of ``batch_size``
training sequences of one (system, condition) dataset, first as written (eager), then with the
model wrapped in ``torch.compile`` (default mode, Inductor on CPU; the backward pass compiled by
AOTAutograd). Prints the compile time (the first compiled step), the seconds per step of each mode
after warm-up (best of ``--repeats`` rounds of ``--steps`` steps, alternated) and their ratio:
eager / compiled > 1 means compilation pays. The first step's losses of the two modes (same
weights, same minibatch) must agree to 1e-4 relative, or the benchmark stops. The trainer runs eager; this measures whether a
compiled step would cut the FHN stage's CPU-hours (the paper-scale cost issue).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fhn_compile.py [--models neural_ode,grud]
        [--steps 5] [--repeats 2] [--threads 1]

Compilation unrolls each model's time loop (59 gaps; the Neural ODE's 2 RK4 substeps of 4 stages
each), so compiling takes minutes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
import yaml

from otgap.config import fhn_system_train
from otgap.data.fhn import attractor_std, system_params
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.models.sequence import build_sequence_model
from otgap.train.determinism import seed_everything
from otgap.train.sequence import multi_step_loss, split_tensors


def make_step(model, opt, batch, n_context: int, horizon: int):
    t, y, obs = batch

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = multi_step_loss(model, t, y, obs, n_context, horizon)
        loss.backward()
        opt.step()
        return float(loss)

    return step


def seconds_per_step(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--system", default="fhn")
    ap.add_argument("--condition", default="jitter")
    ap.add_argument("--models", default="neural_ode")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as fh:
        cfg = yaml.safe_load(fh)["fhn"]
    train = cfg["train"]
    cond = next(c for c in cfg["conditions"] if c["name"] == args.condition)
    spec = replace(DatasetSpec(**cfg.get("dataset", {})), rollout_n=1, rollout_length=50)
    scale = attractor_std(args.system, seed=0)
    data = build_dataset(args.system, Condition(**cond), 0, spec, 0.0, scale)
    t, y, obs = split_tensors(data, "train")
    bs = int(train["batch_size"])
    batch = (t[:bs], y[:bs], obs[:bs])
    params = system_params(args.system)
    print(f"{args.config}: {args.system}/{args.condition}, batch {bs}, context {spec.n_context}, "
          f"horizon {spec.horizon}; torch {torch.__version__}, threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{'model':12s} {'compile s':>10s} {'eager s/step':>13s} {'compiled s/step':>16s} "
          f"{'eager/compiled':>15s} {'loss rel diff':>14s}")  # fmt: skip
    for name in args.models.split(","):
        own = fhn_system_train(train, args.system)
        kwargs = {"hidden": int(train["hidden"]), **own["model_kwargs"].get(name, {})}
        if params["amp"] != 0.0:
            kwargs["drive_omega"] = params["omega"]
        lr = float({**train, **own["overrides"].get(name, {})}["lr"])
        runs = {}
        for mode in ("eager", "compiled"):
            seed_everything(0)
            model = build_sequence_model(name, **kwargs)
            model.prepare(t, y, obs)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            net = torch.compile(model) if mode == "compiled" else model
            runs[mode] = make_step(net, opt, batch, spec.n_context, spec.horizon)
        t0 = time.perf_counter()
        first = runs["compiled"]()  # compiles forward and backward
        compile_s = time.perf_counter() - t0
        # the same model, initial weights and minibatch: the first losses must agree
        gap = abs(runs["eager"]() - first) / abs(first)
        if gap > 1e-4:
            raise RuntimeError(f"{name}: compiled loss {first} differs from eager (rel {gap:.1e})")
        best = {"eager": float("inf"), "compiled": float("inf")}
        for _ in range(args.repeats):  # alternated, best of each: the machine may be loaded
            for mode in ("eager", "compiled"):
                best[mode] = min(best[mode], seconds_per_step(runs[mode], args.steps))
        print(f"{name:12s} {compile_s:10.1f} {best['eager']:13.3f} {best['compiled']:16.3f} "
              f"{best['eager'] / best['compiled']:15.2f} {gap:14.1e}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
