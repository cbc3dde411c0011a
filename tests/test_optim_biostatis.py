"""BiostatisV6 (both classes) against a reference in plain Python floats, written here from the
equations of docs/sources.md#biostatisv6 (the authors' code), entry by entry, with no torch."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch

from otgap.optim import OPTIMIZERS
from otgap.optim.biostatis import BiostatisV6, BiostatisV6Dynamo, biostatis_preconditioner

DEFAULTS = {
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "weight_decay": 1e-2,
    "homeo_rate": 0.03,
    "coherence_target": 0.8,
    "energy_target": 1e-3,
    "lambda_energy": 0.1,
    "memory_decays": (0.9, 0.99),
    "memory_weights": (0.6, 0.4),
    "flip_threshold": 0.2,
    "ascent_strength": 0.05,
}


def clip(x, lo, hi):
    return max(lo, min(hi, x))


def sign(x):
    return (x > 0) - (x < 0)


def reference_step(groups, grads, states, hierarchical):
    """One step of the authors' update on lists of floats.

    ``groups``: list of dicts with 'lr', the hyperparameters and 'params' (list of lists of
    floats, updated in place); ``grads`` the same shape as the params; ``states`` one dict per
    parameter (created here on the first step). Returns the per-parameter branch flags (True when
    the selective-ascent term was added).
    """
    flags = []
    k = 0
    for group, ggrads in zip(groups, grads, strict=True):
        b1, b2 = group["betas"]
        rho, cst = group["homeo_rate"], group["coherence_target"]
        est, lam = group["energy_target"], group["lambda_energy"]
        allg = [x for g in ggrads for x in g]
        energy = sum(x * x for x in allg) / len(allg)
        coherence = sum(abs(math.tanh(x)) for x in allg) / len(allg)
        if hierarchical:
            h_glob = 1.0 - 0.5 * rho * math.tanh(coherence - cst)
            e_glob = clip(0.9 * (1 + 0.5 * lam * (est - energy)) + 0.1, 0.925, 1.075)
        else:
            h_glob = 1.0 - rho * math.tanh(coherence - cst)
            e_glob = clip(0.8 * (1 + lam * (est - energy)) + 0.2, 0.85, 1.15)
        for p, g in zip(group["params"], ggrads, strict=True):
            n = len(p)
            st = states[k]
            k += 1
            if not st:
                st.update(t=0, m=[0.0] * n, v=[0.0] * n, mem=[[0.0] * n for _ in range(2)])
            st["t"] += 1
            t = st["t"]
            m = [b1 * a + (1 - b1) * x for a, x in zip(st["m"], g, strict=True)]
            v = [b2 * a + (1 - b2) * x * x for a, x in zip(st["v"], g, strict=True)]
            mem = [
                [d * a + (1 - d) * x for a, x in zip(st["mem"][j], g, strict=True)]
                for j, d in enumerate(group["memory_decays"])
            ]
            st["m"], st["v"], st["mem"] = m, v, mem
            w0, w1 = group["memory_weights"]
            flow = [w0 * a + w1 * b for a, b in zip(*mem, strict=True)]
            dot = sum(a * x for a, x in zip(m, g, strict=True))
            nm = math.sqrt(sum(a * a for a in m))
            ng = math.sqrt(sum(x * x for x in g))
            cos = dot / (max(nm, 1e-8) * max(ng, 1e-8))
            adaptive = [x * (1 + 0.5 * sign(x) * math.tanh(cos)) for x in g]
            importance = (sum(abs(a) for a in m) / n) / (sum(math.sqrt(b) for b in v) / n + 1e-12)
            taken = importance < group["flip_threshold"]
            flags.append(taken)
            if taken:
                ramp = 1 - math.exp(-0.02 * t)
                adaptive = [
                    a + group["ascent_strength"] * ramp * x
                    for a, x in zip(adaptive, g, strict=True)
                ]
            bc1, bc2 = 1 - b1**t, 1 - b2**t
            if hierarchical:
                e_loc = sum(x * x for x in g) / n
                c_loc = sum(abs(math.tanh(x)) for x in g) / n
                h_loc = 1.0 - rho * math.tanh(c_loc - cst)
                e_l = clip(0.8 * (1 + lam * (est - e_loc)) + 0.2, 0.85, 1.15)
                h = 0.3 * h_glob + 0.7 * h_loc
                e = 0.3 * e_glob + 0.7 * e_l
            else:
                h, e = h_glob, e_glob
            st["gain"] = h * e
            lr, wd = group["lr"], group["weight_decay"]
            for i in range(n):
                denom = math.sqrt(v[i]) / math.sqrt(bc2) + group["eps"]
                upd = m[i] / denom + 0.05 * flow[i] + 0.01 * adaptive[i]
                p[i] = p[i] * (1 - lr * wd) - lr / bc1 * h * e * upd
    return flags


def make_problem(seed):
    """Two groups of small float64 tensors and a loss whose gradients differ in scale per tensor."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [[(3, 2), (4,)], [(2, 2), (1,)]]
    params = [
        [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in grp]
        for grp in shapes
    ]
    scales = [[0.05, 2.0], [0.7, 0.3]]
    return params, scales


def loss_fn(params, scales, step):
    """A loss whose gradients change direction between steps (so the cosine moves)."""
    total = 0.0
    for grp, sc in zip(params, scales, strict=True):
        for j, (p, s) in enumerate(zip(grp, sc, strict=True)):
            target = math.sin(step + j) * torch.ones_like(p)
            total = total + s * ((p - target) ** 2).sum() + s * 0.3 * torch.sin(3 * p).sum()
    return total


def run_both(cls, hierarchical, hyper_by_group, n_steps, seed=0):
    params, scales = make_problem(seed)
    groups_torch = [{"params": ps, **h} for ps, h in zip(params, hyper_by_group, strict=True)]
    opt = cls(groups_torch)
    ref_groups = [
        {**DEFAULTS, **h, "params": [p.detach().reshape(-1).tolist() for p in ps]}
        for ps, h in zip(params, hyper_by_group, strict=True)
    ]
    ref_states = [{} for ps in params for _ in ps]
    all_flags = []
    for step in range(n_steps):
        opt.zero_grad()
        loss_fn(params, scales, step).backward()
        grads = [[p.grad.reshape(-1).tolist() for p in ps] for ps in params]
        all_flags.append(reference_step(ref_groups, grads, ref_states, hierarchical))
        opt.step()
        for ps, rg in zip(params, ref_groups, strict=True):
            for p, rp in zip(ps, rg["params"], strict=True):
                got = p.detach().reshape(-1).tolist()
                assert got == pytest.approx(rp, rel=1e-10, abs=1e-12), f"step {step + 1}"
    return opt, params, ref_states, all_flags


CLASSES = [(BiostatisV6, True), (BiostatisV6Dynamo, False)]


@pytest.mark.parametrize(("cls", "hierarchical"), CLASSES)
@pytest.mark.parametrize("n_steps", [1, 6])
def test_matches_plain_python_reference(cls, hierarchical, n_steps):
    """Two groups with different lr and weight decay; the ascent branch taken in some tensors.

    At step 1 every tensor's importance is 0.1 / sqrt(0.001) = 3.16, so a threshold of 3.0 leaves
    the first group's branch untaken and 3.5 takes the second's.
    """
    hyper = [
        {"lr": 1e-2, "weight_decay": 0.05, "flip_threshold": 3.0},
        {"lr": 3e-3, "weight_decay": 0.01, "flip_threshold": 3.5, "homeo_rate": 0.5},
    ]
    _, _, _, flags = run_both(cls, hierarchical, hyper, n_steps)
    assert flags[0] == [False, False, True, True]
    if n_steps > 1:
        taken = [f for step in flags for f in step]
        assert any(taken) and not all(taken), "both branches of selective ascent must be exercised"


@pytest.mark.parametrize(("cls", "hierarchical"), CLASSES)
def test_ascent_branch_on_and_off(cls, hierarchical):
    """flip_threshold 10 takes the branch everywhere, 0 nowhere; both still match the reference."""
    for thr, expect in [(10.0, True), (0.0, False)]:
        hyper = [{"lr": 1e-2, "flip_threshold": thr}, {"lr": 5e-3, "flip_threshold": thr}]
        _, _, _, flags = run_both(cls, hierarchical, hyper, 4, seed=1)
        assert all(f == expect for step in flags for f in step)


@pytest.mark.parametrize(("cls", "hierarchical"), CLASSES)
def test_large_gradients_hit_the_clamps(cls, hierarchical):
    """Energy far above the target clamps e at its floor; the reference agrees."""
    params, _ = make_problem(2)
    opt = cls([{"params": params[0], "lr": 1e-2}, {"params": params[1], "lr": 2e-2}])
    ref_groups = [
        {**DEFAULTS, "lr": lr, "params": [p.detach().reshape(-1).tolist() for p in ps]}
        for ps, lr in zip(params, [1e-2, 2e-2], strict=True)
    ]
    states = [{} for ps in params for _ in ps]
    for step in range(3):
        opt.zero_grad()
        sum((30.0 * (p - step) ** 2).sum() for ps in params for p in ps).backward()
        grads = [[p.grad.reshape(-1).tolist() for p in ps] for ps in params]
        reference_step(ref_groups, grads, states, hierarchical)
        opt.step()
    got = [x for ps in params for p in ps for x in p.detach().reshape(-1).tolist()]
    want = [x for rg in ref_groups for rp in rg["params"] for x in rp]
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)
    gains = [s["gain"] for s in states]
    low = (0.3 * 0.925 + 0.7 * 0.85) if hierarchical else 0.85
    assert all(g <= (1 + 0.03) * low + 1e-12 for g in gains)  # e at its floor, h <= 1 + rho


@pytest.mark.parametrize(("cls", "hierarchical"), CLASSES)
def test_preconditioner_is_adams_over_the_gain(cls, hierarchical):
    hyper = [{"lr": 1e-2}, {"lr": 3e-3}]
    opt, params, ref_states, _ = run_both(cls, hierarchical, hyper, 3)
    got = biostatis_preconditioner(opt)
    flat_params = [p for ps in params for p in ps]
    assert len(got) == len(flat_params)
    for d, st in zip(got, ref_states, strict=True):
        t = st["t"]
        want = [(1 - 0.9**t) * (math.sqrt(v / (1 - 0.999**t)) + 1e-8) / st["gain"] for v in st["v"]]
        assert d.reshape(-1).tolist() == pytest.approx(want, rel=1e-10)


def test_skips_parameters_without_gradient():
    a = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = BiostatisV6([a, b], lr=0.1)
    (a**2).sum().backward()
    opt.step()
    assert b not in opt.state and torch.equal(b.detach(), torch.ones(2, dtype=torch.float64))
    assert opt.state[a]["step"] == 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"betas": (1.0, 0.999)}, "beta1"),
        ({"betas": (0.9, -0.1)}, "beta2"),
        ({"weight_decay": -0.01}, "weight_decay"),
        ({"memory_decays": (0.9, 1.0)}, "memory_decays"),
        ({"memory_decays": (0.9,), "memory_weights": (0.6, 0.4)}, "memory_decays"),
        ({"eps": -1.0}, "eps"),
        ({"homeo_rate": -0.1}, "homeo_rate"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(kwargs, name):
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=name):
        BiostatisV6([p], **kwargs)
    with pytest.raises(ValueError, match=name):
        BiostatisV6Dynamo([{"params": [p], **kwargs}])


def test_memory_weights_need_not_sum_to_one():
    p = torch.nn.Parameter(torch.zeros(2))
    BiostatisV6([p], memory_weights=(0.9, 0.9))


@pytest.mark.parametrize(("cls", "hierarchical"), CLASSES)
def test_state_dict_round_trip_two_groups(cls, hierarchical):
    hyper = [{"lr": 1e-2}, {"lr": 3e-3, "weight_decay": 0.1}]
    opt, params, _, _ = run_both(cls, hierarchical, hyper, 2)
    state = copy.deepcopy(opt.state_dict())
    clones = [[torch.nn.Parameter(p.detach().clone()) for p in ps] for ps in params]
    fresh = cls([{"params": ps, **h} for ps, h in zip(clones, hyper, strict=True)])
    fresh.load_state_dict(state)
    _, scales = make_problem(0)
    for o, ps in ((opt, params), (fresh, clones)):
        o.zero_grad()
        loss_fn(ps, scales, 7).backward()
        o.step()
    for ps, qs in zip(params, clones, strict=True):
        for p, q in zip(ps, qs, strict=True):
            assert torch.equal(p, q)


def test_float32_and_default_hyperparameters_match_reference_loosely():
    """The registry's defaults are the authors' defaults; float32 tracks the float64 reference."""
    spec = OPTIMIZERS["biostatis"]
    p = torch.nn.Parameter(torch.tensor([0.3, -1.2, 2.0, 0.01]))
    opt = spec.build([p], 1e-3)
    group = opt.param_groups[0]
    for key, value in DEFAULTS.items():
        assert group[key] == value, key
    ref = [{**DEFAULTS, "lr": 1e-3, "params": [p.detach().tolist()]}]
    states = [{}]
    rnd = random.Random(0)
    for _ in range(5):
        g = [rnd.uniform(-1, 1) for _ in range(4)]
        p.grad = torch.tensor(g, dtype=torch.float32)
        g32 = p.grad.tolist()
        reference_step(ref, [[g32]], states, True)
        opt.step()
    assert p.detach().tolist() == pytest.approx(ref[0]["params"][0], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize(("cls", "hierarchical"), CLASSES)
def test_next_preconditioner_is_the_one_the_next_step_applies(cls, hierarchical):
    """P from the next gradients, before the step, equals the reference's P after that step."""
    hyper = [{"lr": 1e-2}, {"lr": 3e-3}]
    opt, params, ref_states, _ = run_both(cls, hierarchical, hyper, 2)
    flat = [p for ps in params for p in ps]
    _, scales = make_problem(0)
    opt.zero_grad()
    loss_fn(params, scales, 2).backward()
    grads = [p.grad.detach().clone() for p in flat]
    before = copy.deepcopy(opt.state_dict())
    got = OPTIMIZERS["biostatis" if hierarchical else "biostatis_dynamo"].preconditioner(
        opt, flat, grads
    )
    assert str(opt.state_dict()) == str(before), "the optimizer's state must not change"
    ref_groups = [
        {**DEFAULTS, **h, "params": [p.detach().reshape(-1).tolist() for p in ps]}
        for ps, h in zip(params, hyper, strict=True)
    ]
    reference_step(
        ref_groups,
        [[g.reshape(-1).tolist() for g in grads[:2]], [g.reshape(-1).tolist() for g in grads[2:]]],
        ref_states,
        hierarchical,
    )
    for d, st in zip(got, ref_states, strict=True):
        t = st["t"]
        want = [(1 - 0.9**t) * (math.sqrt(v / (1 - 0.999**t)) + 1e-8) / st["gain"] for v in st["v"]]
        assert d.reshape(-1).tolist() == pytest.approx(want, rel=1e-10)


def test_optimizer_state_bytes_counts_moments_and_memories():
    from otgap.optim.memory import optimizer_state_bytes

    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    n = sum(p.numel() for p in model.parameters())  # 39 float32 entries in 4 tensors
    x = torch.randn(2, 5)
    opts = {
        "adamw": torch.optim.AdamW(model.parameters(), foreach=True),
        "biostatis": BiostatisV6(model.parameters()),
    }
    for opt in opts.values():
        model.zero_grad()
        model(x).sum().backward()
        opt.step()
    # AdamW: m, v and a float32 step tensor per parameter; ours: m, v, two memories, a float64 gain
    assert optimizer_state_bytes(opts["adamw"]) == 2 * 4 * n + 4 * 4
    assert optimizer_state_bytes(opts["biostatis"]) == 4 * 4 * n + 4 * 8


@pytest.mark.parametrize("cls", [BiostatisV6, BiostatisV6Dynamo])
def test_update_terms_rebuild_the_step_and_diagnostics_by_hand(cls):
    """The recorded terms sum to the step actually taken (p_old (1 - lr wd) - p_new), and the
    diagnostics are their norms' ratios and the gains' statistics, computed here by hand."""
    from otgap.optim.biostatis import update_diagnostics, update_terms

    torch.manual_seed(0)
    params = [torch.randn(5, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    params = [torch.nn.Parameter(p) for p in params]
    lr, wd = 3e-3, 1e-2
    opt = cls(params, lr=lr, weight_decay=wd, flip_threshold=0.5)
    assert update_diagnostics(opt) is None  # before the first step
    for step in range(4):
        for p in params:
            p.grad = torch.randn_like(p) * (0.1 if step % 2 else 2.0)
        before = [p.detach().clone() for p in params]
        opt.step()
    terms = update_terms(opt)
    assert len(terms) == 2
    for p, old, t in zip(params, before, terms, strict=True):
        taken = old * (1 - lr * wd) - p.detach()
        rebuilt = (lr / (1 - 0.9**4)) * float(t["gain"]) * (t["adam"] + t["memory"] + t["grad"])
        torch.testing.assert_close(rebuilt, taken, rtol=1e-9, atol=1e-14)
    d = update_diagnostics(opt)
    gains = [float(opt.state[p]["gain"]) for p in params]
    assert d["gain_mean"] == pytest.approx(sum(gains) / 2)
    assert d["gain_min"] == min(gains) and d["gain_max"] == max(gains)
    assert d["gain_entry_mean"] == pytest.approx((15 * gains[0] + 4 * gains[1]) / 19)
    adam = math.sqrt(sum(float(t["adam"].square().sum()) for t in terms))
    mem = math.sqrt(sum(float(t["memory"].square().sum()) for t in terms))
    assert d["memory_over_adam"] == pytest.approx(mem / adam)
    assert update_diagnostics(torch.optim.AdamW(params)) is None


def test_trace_summary_by_hand():
    from otgap.optim.biostatis import summarise_trace

    rows = [
        {"step": 1, "gain_mean": 1.0, "gain_min": 0.9, "gain_max": 1.1, "gain_entry_mean": 1.02,
         "memory_over_adam": 1e-4, "grad_over_adam": 2e-4},
        {"step": 2, "gain_mean": 1.2, "gain_min": 1.0, "gain_max": 1.3, "gain_entry_mean": 1.04,
         "memory_over_adam": 3e-4, "grad_over_adam": 1e-4},
    ]  # fmt: skip
    s = summarise_trace(rows)
    assert s["effective_gain"] == pytest.approx(1.03) and s["gain_mean"] == pytest.approx(1.1)
    assert s["gain_min"] == 0.9 and s["gain_max"] == 1.3
    assert s["memory_over_adam_max"] == 3e-4 and s["n_evaluations"] == 2
    with pytest.raises(ValueError, match="no BiostatisV6 diagnostics"):
        summarise_trace([])
