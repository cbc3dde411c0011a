"""GRU-D training step: the time loop with the decays computed for all steps before it (the model
in ``otgap.models.grud``) vs the earlier loop that computed them step by step (kept below as the
baseline and checked to give the same predictions and gradients).

Quick-run sizes: 64 sequences of 24 points (16 context, 8 horizon), hidden 32, the multi-step
loss. Prints the median time of a forward+backward+Adam step of each and their ratio.

    .venv/bin/python benchmarks/fhn_grud_step.py [--hidden 32] [--batch 64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import torch

from otgap.models.grud import GRUD
from otgap.models.sequence import carry_forward, feeds_back
from otgap.train.sequence import multi_step_loss


class StepwiseGRUD(GRUD):
    """Baseline: every decay and imputation computed inside the time loop, one step at a time."""

    def _predict(self, t, y, obs):
        B, T, D = y.shape
        h = y.new_zeros(B, self.hidden)
        x_last, t_last = y[:, 0], t[:, 0]
        out = [y[:, 0]]
        for i in range(1, T):
            j = i - 1
            seen = obs[:, j] | (feeds_back(self, self.feedback, j, obs[:, j]) if j else obs[:, j])
            x_j = carry_forward(obs[:, j], y[:, j], out[j])
            m = seen.unsqueeze(-1).to(y.dtype).expand(B, D)
            delta = (t[:, j] - t_last).unsqueeze(-1).expand(B, D)
            gamma_x = torch.exp(-torch.relu(self.decay_x_weight * delta + self.decay_x_bias))
            x_hat = carry_forward(seen, x_j, gamma_x * x_last + (1.0 - gamma_x) * self.x_mean)
            gamma_h = torch.exp(-torch.relu(self.decay_h(delta)))
            gap = (t[:, i] - t[:, j]).unsqueeze(-1)
            inp = torch.cat([x_hat, m, gap, self.drive(t[:, j])], dim=-1)
            h = self.gru(inp, gamma_h * h)
            out.append(x_hat + self.head(h))
            x_last = carry_forward(seen, x_j, x_last)
            t_last = torch.where(seen, t[:, j], t_last)
        return torch.stack(out, dim=1)


def data(batch: int, n_context: int = 16, horizon: int = 8):
    g = torch.Generator().manual_seed(0)
    T = n_context + horizon
    gaps = 0.35 + 0.3 * torch.rand(batch, T, generator=g, dtype=torch.float64)
    t = gaps.cumsum(1)
    y = torch.randn(batch, T, 2, generator=g)
    obs = torch.rand(batch, T, generator=g) < 0.8  # a few held-out context points
    obs[:, 0] = True
    obs[:, n_context:] = False
    return t, y, obs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t, y, obs = data(args.batch)
    models = {}
    for cls in (GRUD, StepwiseGRUD):
        torch.manual_seed(0)
        m = cls(hidden=args.hidden)
        m.prepare(t, y, obs)
        models[cls.__name__] = (m, torch.optim.Adam(m.parameters(), lr=1e-3))
    # same predictions and gradients before timing
    grads = {}
    for name, (m, _) in models.items():
        m.zero_grad()
        loss = multi_step_loss(m, t, y, obs, 16, 8)
        loss.backward()
        grads[name] = (float(loss.detach()), [p.grad.clone() for p in m.parameters()])
    (l1, g1), (l2, g2) = grads.values()
    assert abs(l1 - l2) <= 1e-6 * abs(l2), (l1, l2)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)

    def step(m, opt):
        opt.zero_grad(set_to_none=True)
        multi_step_loss(m, t, y, obs, 16, 8).backward()
        opt.step()

    times = {name: [] for name in models}
    for _ in range(args.repeats):  # interleaved, so that load changes hit both alike
        for name, (m, opt) in models.items():
            t0 = time.perf_counter()
            for _ in range(10):
                step(m, opt)
            times[name].append((time.perf_counter() - t0) / 10)
    med = {name: sorted(v)[len(v) // 2] for name, v in times.items()}
    for name, v in med.items():
        print(f"{name:14s} {1000 * v:7.2f} ms per training step (median of {args.repeats})")
    print(f"speed-up of GRUD over the step-by-step loop: {med['StepwiseGRUD'] / med['GRUD']:.2f}x")


if __name__ == "__main__":
    main()
