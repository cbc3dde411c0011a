"""Adam's preconditioner of the NEXT update (Cohen et al. 2022's P_t) against torch's own step."""

from __future__ import annotations

import pytest
import torch

from otgap.curvature import adam_next_preconditioner, adam_preconditioner

GEN = torch.Generator().manual_seed(0)
X = torch.randn(20, 5, generator=GEN, dtype=torch.float64)
Y = torch.randn(20, 2, generator=GEN, dtype=torch.float64)


def model_and_loss():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    model = model.double()
    return model, lambda idx: ((model(X[idx]) - Y[idx]) ** 2).mean()


def batch(step):
    return torch.arange(20) if step % 2 else torch.arange(10) + 5 * (step % 3)


CASES = [
    (torch.optim.Adam, {}),
    (torch.optim.Adam, {"betas": (0.8, 0.95), "eps": 1e-3}),
    (torch.optim.Adam, {"weight_decay": 0.1}),  # coupled decay enters v
    (torch.optim.Adam, {"amsgrad": True}),
    (torch.optim.AdamW, {"weight_decay": 0.1}),  # decoupled decay does not
]


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=[f"{c.__name__}-{k}" for c, k in CASES])
@pytest.mark.parametrize("steps_before", [0, 1, 4])
def test_next_preconditioner_is_the_one_the_next_step_applies(cls, kw, steps_before):
    model, loss_of = model_and_loss()
    lr = 0.01
    opt = cls(model.parameters(), lr=lr, **kw)
    for step in range(steps_before):
        opt.zero_grad()
        loss_of(batch(step)).backward()
        opt.step()
    params = list(model.parameters())
    grads = torch.autograd.grad(loss_of(batch(steps_before)), params)
    state_before = [{k: v.clone() for k, v in opt.state[p].items()} for p in params]
    P = adam_next_preconditioner(opt, params, grads)
    for p, st in zip(params, state_before, strict=True):  # the optimizer's state is untouched
        assert set(opt.state[p]) == set(st)
        assert all(torch.equal(opt.state[p][k], v) for k, v in st.items())
    before = [p.detach().clone() for p in params]
    # now let torch take that update: theta' = theta (1 - lr wd_decoupled) - lr m' / P
    opt.zero_grad()
    loss_of(batch(steps_before)).backward()
    opt.step()
    wd_dec = kw.get("weight_decay", 0.0) if cls is torch.optim.AdamW else 0.0
    for p, p0, d in zip(params, before, P, strict=True):
        m = opt.state[p]["exp_avg"]
        expected = p0 * (1 - lr * wd_dec) - lr * m / d
        torch.testing.assert_close(p.detach(), expected, rtol=1e-10, atol=1e-13)


def test_differs_from_last_preconditioner_early_and_agrees_late():
    model, loss_of = model_and_loss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    params = list(model.parameters())
    ratios = []
    for _ in range(60):
        opt.zero_grad()
        loss_of(torch.arange(20)).backward()
        opt.step()
        grads = torch.autograd.grad(loss_of(torch.arange(20)), params)
        nxt = torch.cat([d.reshape(-1) for d in adam_next_preconditioner(opt, params, grads)])
        last = torch.cat([d.reshape(-1) for d in adam_preconditioner(opt, params)])
        ratios.append(float((nxt / last).max()))
    assert ratios[0] > 1.05  # the bias corrections and v change a lot in the first steps
    assert abs(ratios[-1] - 1) < 0.02


def test_bad_gradients_are_named():
    model, loss_of = model_and_loss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    params = list(model.parameters())
    with pytest.raises(ValueError, match="next_grads has 1 tensors, expected 4"):
        adam_next_preconditioner(opt, params, [torch.zeros(4, 5)])
    with pytest.raises(ValueError, match=r"next_grads\[0\] has shape \(5, 4\)"):
        adam_next_preconditioner(opt, params, [torch.zeros(5, 4)] + [p for p in params[1:]])
