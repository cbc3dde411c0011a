"""Trial-solution ODE networks (otgap.models.ode_solver) against independent references.

References are written out here, not taken from the library: closed-form solutions for decay,
logistic and dy/dx = x, and scipy's DOP853 (rtol = atol = 1e-12) on a literal transcription of
the FitzHugh-Nagumo equations for the two oscillating systems.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from otgap.models.ode_solver import (
    TrialSolution,
    get_problem,
    solve_ode,
)


def max_abs_error(solution, reference, t_span, n=2001):
    t = np.linspace(t_span[0], t_span[1], n)
    return float(np.max(np.abs(solution(t) - reference(t))))


def fhn_reference(y0, t_span, *, I, amp, omega, a=0.7, b=0.8, tau=12.5):  # noqa: E741
    """DOP853 on the FitzHugh-Nagumo equations as the paper states them (written out here)."""

    def rhs(t, y):
        v, w = y
        return [v - v**3 / 3.0 - w + I + amp * math.cos(omega * t), (v + a - b * w) / tau]

    sol = solve_ivp(rhs, t_span, y0, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True)
    assert sol.success
    return lambda t: sol.sol(t).T


def test_initial_condition_holds_exactly_for_any_weights():
    torch.manual_seed(3)
    y0 = torch.tensor([0.3, -1.7], dtype=torch.float64)
    model = TrialSolution(y0, 2.5, 4.0, hidden=8, depth=2)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 5.0)  # any network at all
        g = model(torch.tensor([2.5, 3.0], dtype=torch.float64))
    assert torch.equal(g[0], y0)  # bitwise, not approximately
    assert not torch.equal(g[1], y0)


def test_trained_solution_starts_exactly_at_y0_in_every_window():
    problem = get_problem("decay")
    sol = solve_ode(problem.f, problem.y0, (0.0, 1.0), window=0.5, adam_steps=5, lbfgs_steps=0)
    assert len(sol.windows) == 2
    assert sol(np.array([0.0]))[0, 0] == 10.0
    # window 1 starts exactly from window 0's end state
    with torch.no_grad():
        end0 = sol.windows[0](torch.tensor([0.5], dtype=torch.float64))[0]
    assert torch.equal(sol.windows[1].y0, end0)


def test_derivative_matches_central_differences():
    torch.manual_seed(0)
    model = TrialSolution(torch.tensor([1.0, 2.0, -1.0]), 0.0, 3.0, hidden=12, depth=2)
    t = torch.linspace(0.1, 2.9, 17, dtype=torch.float64)
    _, dg = model.value_and_derivative(t)
    h = 1e-6
    with torch.no_grad():
        fd = (model(t + h) - model(t - h)) / (2 * h)
    assert dg.shape == (17, 3)
    np.testing.assert_allclose(dg.detach().numpy(), fd.numpy(), rtol=1e-7, atol=1e-8)


def test_decay_within_1e_3_of_the_exact_solution():
    problem = get_problem("decay")
    sol = solve_ode(problem.f, problem.y0, problem.t_span)
    err = max_abs_error(sol, lambda t: (10.0 * np.exp(-2.0 * t))[:, None], (0.0, 1.0))
    assert err <= 1e-3, err


def test_logistic_within_1e_3_of_the_exact_solution():
    problem = get_problem("logistic")
    sol = solve_ode(problem.f, problem.y0, problem.t_span)

    def exact(t):  # g' = 2 g (1 - g), g(0) = 1.2
        return (1.2 / (1.2 - 0.2 * np.exp(-2.0 * t)))[:, None]

    err = max_abs_error(sol, exact, (0.0, 1.0))
    assert err <= 1e-3, err


def test_seed_example_dydx_equals_x():
    problem = get_problem("dydx")
    sol = solve_ode(problem.f, problem.y0, problem.t_span)
    err = max_abs_error(sol, lambda t: (0.5 * t**2)[:, None], (0.0, 1.0))
    assert err <= 1e-3, err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "drive"),
    [
        ("fhn", {"I": 0.5, "amp": 0.0, "omega": 0.0}),
        ("fhn_forced", {"I": 0.3, "amp": 0.3, "omega": 0.8}),
    ],
)
def test_fhn_one_period_within_2e_2_of_dop853(name, drive):
    problem = get_problem(name)
    t0, t1 = problem.t_span
    assert t1 > 20.0  # a whole oscillation, several marching windows
    sol = solve_ode(problem.f, problem.y0, problem.t_span)
    assert len(sol.windows) >= 5
    err = max_abs_error(sol, fhn_reference(list(problem.y0), (t0, t1), **drive), (t0, t1))
    assert err <= 2e-2, err


def test_fhn_period_matches_an_independent_estimate():
    """One period of the unforced cycle: the state returns to itself (DOP853 on the equations)."""
    problem = get_problem("fhn")
    t1 = problem.t_span[1]
    ref = fhn_reference(list(problem.y0), (0.0, t1), I=0.5, amp=0.0, omega=0.0)
    np.testing.assert_allclose(ref(np.array([t1]))[0], problem.y0, atol=2e-2)


def test_same_seed_same_numbers_and_seed_matters():
    problem = get_problem("dydx")
    kw = {"adam_steps": 20, "lbfgs_steps": 10}
    a = solve_ode(problem.f, problem.y0, problem.t_span, seed=1, **kw)
    b = solve_ode(problem.f, problem.y0, problem.t_span, seed=1, **kw)
    c = solve_ode(problem.f, problem.y0, problem.t_span, seed=2, **kw)
    t = np.linspace(0.0, 1.0, 11)
    assert np.array_equal(a(t), b(t))
    assert a.record.loss == b.record.loss
    assert not np.array_equal(a(t), c(t))


def test_tensor_in_tensor_out_and_span_check():
    problem = get_problem("dydx")
    sol = solve_ode(problem.f, problem.y0, problem.t_span, adam_steps=5, lbfgs_steps=0)
    out = sol(torch.linspace(0.0, 1.0, 5, dtype=torch.float64))
    assert isinstance(out, torch.Tensor) and out.shape == (5, 1)
    with pytest.raises(ValueError, match="solved span"):
        sol(np.array([1.5]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y0": [[1.0]]}, "y0 must have shape"),
        ({"t_span": (1.0, 0.0)}, "t1 > t0"),
        ({"f": lambda t, y: y.sum(dim=1)}, r"shape \(T, d\)"),
        ({"widht": 3}, "unknown solve_ode option"),
        ({"window": -1.0}, "'window' must be positive"),
        ({"adam_steps": 0, "lbfgs_steps": 0}, "nothing trains"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    args = {"f": lambda t, y: -y, "y0": [1.0], "t_span": (0.0, 1.0)}
    for key in ("f", "y0", "t_span"):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises(ValueError, match=match):
        solve_ode(args["f"], args["y0"], args["t_span"], **kwargs)


def test_unknown_problem_names_the_built_in_ones():
    with pytest.raises(ValueError, match="decay"):
        get_problem("lorenz")
