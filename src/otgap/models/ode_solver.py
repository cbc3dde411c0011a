"""Networks that solve a KNOWN ordinary differential equation (Lagaris et al. 1998; seed 004).

The solution of dy/dt = f(t, y), y(t0) = y0 is sought as the trial function

    g(t) = y0 + (t - t0) N(t; P),

with N a small tanh network with one output per state component. The initial condition holds
exactly for every P (the second term vanishes at t0), so training only has to drive the ODE
residual to zero: the loss is the mean over collocation points t_j of
||g'(t_j) - f(t_j, g(t_j))||^2, with g' by automatic differentiation. Systems need nothing
special: all components share one network and their squared residuals are summed. Nothing here
uses data of the solution; the network learns the solution from the equation alone (unlike a
PINN, which adds a data misfit).

g' comes from ``torch.func.jacrev`` of the map "times (T,) -> sum over points of g, (d,)": the
network acts on each time separately, so that Jacobian's column j is exactly g'(t_j). One reverse
pass per state component (vectorised by jacrev), no Python loop over points; the loss is then
differentiated with respect to P by ordinary autograd through the transform.

Parametrisation: N = f(t0, y0) + c * MLP(x), x = (t - t0) mapped to [-1, 1] over the window and
c = max(|f(t0, y0)|, min_scale) per component. This is still the trial form above (N is any
function of t); it only makes the untrained network start near the explicit Euler line and puts
every output on a scale of order one, which is what lets one set of defaults fit g' = -2 g from
10 as well as the slow w of FitzHugh-Nagumo.

Training per window: Adam (a short, robust start from the random initialisation), then L-BFGS
with a strong-Wolfe line search, which is what brings the residual down to the 1e-6..1e-10 range
that the accuracy targets need; float64 throughout.

Long horizons (time-marching). One trial function over many oscillations needs a large network
and trains badly (one window over a whole FHN period, with the defaults, is off by up to 2.6 from
DOP853). ``solve_ode`` therefore splits [t0, t1] into consecutive windows of length at most
``window`` (default 5 time units); window k starts from the state that window k-1 predicts at
its end, so the initial condition of every window is again exact by construction, and every
window gets a fresh network. The price is that errors are passed on: if window k adds
a local error e_k at its end and the flow amplifies perturbations over window j by a factor L_j,
the error after K windows is about sum_k e_k prod_{j>k} L_j: errors add up, each one amplified or
damped by the flow after it. For a contracting flow (decay, the logistic equation near its
equilibrium: L_j < 1) the sum stays of the size of one window's error. On the stable limit cycle
of unforced FitzHugh-Nagumo, transverse errors decay while a phase error persists (L_j ~ 1 along
the orbit), so at worst the error grows linearly with K; measured over one period (39.5 time
units, defaults, seed 0) it does not grow steadily: the max abs error at the window ends was
4.8e-4, 3.8e-4, 9.7e-4, 1.7e-4, 1.1e-4, 9.1e-5, 1.1e-4, 4.8e-3 (window 5, 8 windows; max over
the period 6.1e-3, 10 s CPU) and stayed within 4.5e-5..5.4e-4 with window 2.5 (16 windows; max
1.6e-3, 18 s CPU), while window 10 (4 windows) failed (ends 1.3e-3, 0.36, 0.15, 2.0): errors
relax on the slow branches and are set by the windows that hold a fast jump of the relaxation
oscillation. Shorter windows cost more windows but each is easier. In
the chaotic forced system errors grow like exp(lambda_1 t) on top (lambda_1 ~ 0.04), as for any
integrator. The training record keeps each window's bounds and final loss, and
``evaluate_problem`` returns the error at every window end.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from otgap.data.fhn import system_params, vector_field

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SolverOptions:
    """Settings of ``solve_ode``; the defaults meet the tolerances of the built-in problems.

    ``window``: longest window of the time-marching in time units (None: one window over the
    whole span). ``n_collocation``: equally spaced points per window (both ends included).
    ``adam_steps`` at ``adam_lr``, then at most ``lbfgs_steps`` L-BFGS iterations (fewer when
    the gradient vanishes). ``record_every``: iterations between entries of the
    training record.
    """

    hidden: int = 16
    depth: int = 2
    n_collocation: int = 32
    adam_steps: int = 100
    adam_lr: float = 1e-2
    lbfgs_steps: int = 200
    window: float | None = 5.0
    record_every: int = 10
    min_scale: float = 0.1

    def __post_init__(self) -> None:
        positive = ("hidden", "depth", "n_collocation", "record_every")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise ValueError(f"option '{key}' must be >= 1, got {getattr(self, key)}")
        if self.n_collocation < 2:
            raise ValueError(f"option 'n_collocation' must be >= 2, got {self.n_collocation}")
        for key in ("adam_steps", "lbfgs_steps"):
            if int(getattr(self, key)) < 0:
                raise ValueError(f"option '{key}' must be >= 0, got {getattr(self, key)}")
        if self.adam_steps + self.lbfgs_steps == 0:
            raise ValueError("options 'adam_steps' and 'lbfgs_steps' are both 0: nothing trains")
        if not self.adam_lr > 0:
            raise ValueError(f"option 'adam_lr' must be positive, got {self.adam_lr}")
        if self.window is not None and not self.window > 0:
            raise ValueError(f"option 'window' must be positive or None, got {self.window}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> SolverOptions:
        """Options from keywords; an unknown key is an error that lists the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown solve_ode option(s) {unknown}; known: {sorted(known)}")
        return replace(cls(), **dict(options))


class TrialSolution(nn.Module):
    """g(t) = y0 + (t - t0) N(t; P) on one window [t0, t0 + length]; N a tanh MLP, d outputs.

    The network sees the time mapped to [-1, 1] over the window, so one set of defaults works
    for windows of any length and position (the forced system runs at absolute times ~ 200).
    """

    def __init__(
        self,
        y0: torch.Tensor,
        t0: float,
        length: float,
        hidden: int,
        depth: int,
        slope: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
    ):
        super().__init__()
        d = y0.shape[0]
        layers: list[nn.Module] = []
        width_in = 1
        for _ in range(depth):
            layers += [nn.Linear(width_in, hidden), nn.Tanh()]
            width_in = hidden
        layers.append(nn.Linear(width_in, d))
        self.net = nn.Sequential(*layers).double()
        self.register_buffer("y0", y0.detach().clone().double())
        zeros = torch.zeros(d, dtype=torch.float64)
        slope = zeros if slope is None else slope.detach().clone().double()
        scale = zeros + 1.0 if scale is None else scale.detach().clone().double()
        self.register_buffer("slope", slope)
        self.register_buffer("scale", scale)
        self.t0 = float(t0)
        self.length = float(length)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        s = t - self.t0
        x = (2.0 / self.length) * s - 1.0
        return self.y0 + s.unsqueeze(-1) * (self.slope + self.scale * self.net(x.unsqueeze(-1)))

    def value_and_derivative(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g(t) and dg/dt at times (T,), both (T, d): per-point forward Jacobians under vmap."""

        def summed(tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            g = self.forward(tt)
            return g.sum(dim=0), g

        jac, g = torch.func.jacrev(summed, has_aux=True)(t)
        return g, jac.transpose(0, 1)


def residual(model: TrialSolution, f: VectorField, t: torch.Tensor) -> torch.Tensor:
    """The ODE residual g'(t) - f(t, g(t)) at times (T,), shape (T, d)."""
    g, dg = model.value_and_derivative(t)
    return dg - f(t, g)


@dataclass
class TrainingRecord:
    """What happened during training, one row per recorded iteration (all windows together).

    ``error`` holds the max abs error against the reference on the window's collocation points
    when ``solve_ode`` was given one (NaN otherwise). ``train_seconds`` excludes the time spent
    evaluating that reference error; ``train_cpu_seconds`` is the process CPU time of the same
    (the wall time inflates on a shared machine, the CPU time much less).
    """

    window: list[int] = field(default_factory=list)
    iteration: list[int] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    error: list[float] = field(default_factory=list)
    window_bounds: list[tuple[float, float]] = field(default_factory=list)
    final_loss: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0
    n_params: int = 0
    n_collocation: int = 0

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "window": np.asarray(self.window, dtype=np.int64),
            "iteration": np.asarray(self.iteration, dtype=np.int64),
            "lbfgs": np.asarray([p == "lbfgs" for p in self.phase], dtype=bool),
            "loss": np.asarray(self.loss, dtype=np.float64),
            "error": np.asarray(self.error, dtype=np.float64),
            "window_bounds": np.asarray(self.window_bounds, dtype=np.float64).reshape(-1, 2),
            "final_loss": np.asarray(self.final_loss, dtype=np.float64),
        }


class ODESolution:
    """The trained piecewise trial solution: call it with times (T,) to get states (T, d).

    Times must lie in the solved span; a time on a window boundary is taken from the later window
    (both agree there up to that window's start, which is exact by construction). Returns a numpy
    float64 array for numpy input and a float64 tensor for tensor input.
    """

    def __init__(
        self,
        windows: Sequence[TrialSolution],
        t_span: tuple[float, float],
        record: TrainingRecord,
        options: SolverOptions,
    ):
        self.windows = list(windows)
        self.t_span = (float(t_span[0]), float(t_span[1]))
        self.record = record
        self.options = options
        self.starts = np.asarray([w.t0 for w in self.windows])

    def __call__(self, t: Any) -> Any:
        as_tensor = isinstance(t, torch.Tensor)
        tt = t.detach().double().cpu().numpy() if as_tensor else np.asarray(t, dtype=np.float64)
        if tt.ndim != 1:
            raise ValueError(f"times must have shape (T,), got {tt.shape}")
        t0, t1 = self.t_span
        slack = 1e-9 * max(1.0, abs(t1 - t0))
        if tt.size and (tt.min() < t0 - slack or tt.max() > t1 + slack):
            raise ValueError(
                f"times must lie in the solved span [{t0}, {t1}], got [{tt.min()}, {tt.max()}]"
            )
        index = np.clip(np.searchsorted(self.starts, tt, side="right") - 1, 0, None)
        out = np.empty((tt.size, self.windows[0].y0.shape[0]), dtype=np.float64)
        with torch.no_grad():
            for k in np.unique(index):
                sel = index == k
                out[sel] = self.windows[k](torch.as_tensor(tt[sel])).numpy()
        return torch.as_tensor(out) if as_tensor else out

    @property
    def n_params(self) -> int:
        """Trainable parameters of one window's network (every window has the same network)."""
        return self.record.n_params


def _window_edges(t0: float, t1: float, window: float | None) -> np.ndarray:
    if window is None or window >= t1 - t0:
        return np.array([t0, t1])
    n = math.ceil((t1 - t0) / window - 1e-9)
    return np.linspace(t0, t1, n + 1)


def _train_window(
    model: TrialSolution,
    f: VectorField,
    t_col: torch.Tensor,
    options: SolverOptions,
    record: TrainingRecord,
    k: int,
    reference: Callable[[np.ndarray], np.ndarray] | None,
) -> tuple[float, float, float]:
    """Adam then L-BFGS on the residual loss; returns (final loss, wall and CPU seconds spent on
    the reference error)."""
    t_np = t_col.numpy()
    ref_values = reference(t_np) if reference is not None else None
    ref_seconds = ref_cpu = 0.0

    def loss_fn() -> torch.Tensor:
        return residual(model, f, t_col).pow(2).sum(dim=1).mean()

    def note(iteration: int, phase: str, loss: float) -> None:
        nonlocal ref_seconds, ref_cpu
        err = float("nan")
        if ref_values is not None:
            start, start_cpu = time.perf_counter(), time.process_time()
            with torch.no_grad():
                err = float(np.max(np.abs(model(t_col).numpy() - ref_values)))
            ref_seconds += time.perf_counter() - start
            ref_cpu += time.process_time() - start_cpu
        record.window.append(k)
        record.iteration.append(iteration)
        record.phase.append(phase)
        record.loss.append(loss)
        record.error.append(err)

    params = list(model.parameters())
    adam = torch.optim.Adam(params, lr=options.adam_lr)
    loss_value = float("nan")
    evaluations = 0  # L-BFGS loss evaluations (line-search steps included)
    for i in range(options.adam_steps):
        adam.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        adam.step()
        loss_value = float(loss.detach())
        if i % options.record_every == 0:
            note(i, "adam", loss_value)
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"window {k}: the residual loss became {loss_value} in Adam")

    if options.lbfgs_steps > 0:
        lbfgs = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=options.lbfgs_steps,
            max_eval=2 * options.lbfgs_steps,
            history_size=50,
            tolerance_grad=1e-12,
            tolerance_change=1e-20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            nonlocal evaluations
            lbfgs.zero_grad(set_to_none=True)
            loss = loss_fn()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"window {k}: the residual loss became {value} in L-BFGS")
            if evaluations % options.record_every == 0:
                note(options.adam_steps + evaluations, "lbfgs", value)
            evaluations += 1
            loss.backward()
            return loss

        lbfgs.step(closure)
    with torch.no_grad():
        final = float(loss_fn().detach())
    note(options.adam_steps + evaluations, "final", final)
    return final, ref_seconds, ref_cpu


def _check_problem(
    f: VectorField, y0: Any, t_span: Sequence[float]
) -> tuple[torch.Tensor, float, float]:
    if not callable(f):
        raise TypeError(f"f must be a callable f(t, y) -> dy/dt, got {type(f).__name__}")
    y0_t = torch.as_tensor(np.asarray(y0, dtype=np.float64))
    if y0_t.ndim != 1 or y0_t.shape[0] < 1:
        raise ValueError(f"y0 must have shape (d,) with d >= 1, got {tuple(y0_t.shape)}")
    if not torch.isfinite(y0_t).all():
        raise ValueError(f"y0 must be finite, got {y0_t.tolist()}")
    if len(t_span) != 2:
        raise ValueError(f"t_span must be (t0, t1), got {t_span!r}")
    t0, t1 = float(t_span[0]), float(t_span[1])
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise ValueError(f"t_span must be finite with t1 > t0, got ({t0}, {t1})")
    probe_t = torch.tensor([t0, t1], dtype=torch.float64)
    probe = f(probe_t, y0_t.expand(2, -1))
    if not isinstance(probe, torch.Tensor) or tuple(probe.shape) != (2, y0_t.shape[0]):
        shape = tuple(probe.shape) if isinstance(probe, torch.Tensor) else type(probe).__name__
        raise ValueError(
            f"f(t, y) must return a tensor of shape (T, d) = (2, {y0_t.shape[0]}) for t of shape "
            f"(2,) and y of shape (2, {y0_t.shape[0]}); got {shape}"
        )
    return y0_t, t0, t1


def solve_ode(
    f: VectorField,
    y0: Any,
    t_span: Sequence[float],
    *,
    seed: int = 0,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
    **options: Any,
) -> ODESolution:
    """Solve dy/dt = f(t, y), y(t_span[0]) = y0 with trial-solution networks.

    ``f`` maps times (T,) and states (T, d) (float64 tensors) to derivatives (T, d); ``y0`` has
    shape (d,). ``options`` are the fields of ``SolverOptions`` (unknown names are an error).
    ``reference`` (optional) maps numpy times (T,) to exact states (T, d); when given, the training
    record carries the max abs error on each window's collocation points next to the loss.
    Same seed, same machine -> same numbers. Returns an ``ODESolution`` with ``.record``.
    """
    opts = SolverOptions.from_mapping(options)
    y0_t, t0, t1 = _check_problem(f, y0, t_span)
    edges = _window_edges(t0, t1, opts.window)
    record = TrainingRecord(n_collocation=opts.n_collocation * (len(edges) - 1))
    windows: list[TrialSolution] = []
    start_state = y0_t
    generator_state = torch.get_rng_state()
    seconds = cpu_seconds = 0.0
    try:
        for k in range(len(edges) - 1):
            a, b = float(edges[k]), float(edges[k + 1])
            torch.manual_seed(int(seed) * 1_000_003 + k)
            with torch.no_grad():
                slope = f(torch.tensor([a], dtype=torch.float64), start_state[None])[0]
            scale = torch.clamp(slope.abs(), min=opts.min_scale)
            model = TrialSolution(start_state, a, b - a, opts.hidden, opts.depth, slope, scale)
            t_col = torch.linspace(a, b, opts.n_collocation, dtype=torch.float64)
            begin, begin_cpu = time.perf_counter(), time.process_time()
            final, ref_wall, ref_cpu = _train_window(model, f, t_col, opts, record, k, reference)
            seconds += time.perf_counter() - begin - ref_wall
            cpu_seconds += time.process_time() - begin_cpu - ref_cpu
            record.window_bounds.append((a, b))
            record.final_loss.append(final)
            for p in model.parameters():
                p.requires_grad_(False)
            with torch.no_grad():
                start_state = model(torch.tensor([b], dtype=torch.float64))[0]
            if not torch.isfinite(start_state).all():
                raise FloatingPointError(f"window {k} ended in a non-finite state")
            windows.append(model)
    finally:
        torch.set_rng_state(generator_state)
    record.train_seconds = seconds
    record.train_cpu_seconds = cpu_seconds
    record.n_params = sum(p.numel() for p in windows[0].parameters())
    return ODESolution(windows, (t0, t1), record, opts)


# ---- built-in problems -------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A known initial-value problem with its exact solution, if there is one in closed form."""

    name: str
    f: VectorField
    y0: tuple[float, ...]
    t_span: tuple[float, float]
    exact: Callable[[np.ndarray], np.ndarray] | None
    description: str
    fhn_system: str | None = None  # FitzHugh-Nagumo problems: the system of ``otgap.data.fhn``


def _decay(gamma: float = 2.0, g0: float = 10.0) -> Problem:
    return Problem(
        name="decay",
        f=lambda t, y: -gamma * y,
        y0=(g0,),
        t_span=(0.0, 1.0),
        exact=lambda t: (g0 * np.exp(-gamma * np.asarray(t)))[:, None],
        description=f"g' = -{gamma:g} g, g(0) = {g0:g}",
    )


def _logistic(alpha: float = 2.0, cap: float = 1.0, g0: float = 1.2) -> Problem:
    def exact(t: np.ndarray) -> np.ndarray:
        e = np.exp(-alpha * cap * np.asarray(t))
        return (cap * g0 / (g0 + (cap - g0) * e))[:, None]

    return Problem(
        name="logistic",
        f=lambda t, y: alpha * y * (cap - y),
        y0=(g0,),
        t_span=(0.0, 1.0),
        exact=exact,
        description=f"g' = {alpha:g} g ({cap:g} - g), g(0) = {g0:g}",
    )


def _dydx() -> Problem:
    return Problem(
        name="dydx",
        f=lambda t, y: t.unsqueeze(-1).expand_as(y),
        y0=(0.0,),
        t_span=(0.0, 1.0),
        exact=lambda t: (0.5 * np.asarray(t) ** 2)[:, None],
        description="dy/dx = x, y(0) = 0 (seed 004)",
    )


# A state on the unforced limit cycle (after 300 time units from (-1, 1)); starting on the cycle
# keeps "one period" meaningful. The forced system starts from the same state.
FHN_Y0 = (-1.0, 1.0)


def fhn_field(system: str = "fhn", params: Mapping[str, float] | None = None) -> VectorField:
    """The project's FitzHugh-Nagumo right-hand side (``otgap.data.fhn``) as f(t, y)."""
    p = system_params(system, params)

    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return vector_field(t, y, system, p)

    return f


def oscillation_period(
    system: str = "fhn",
    params: Mapping[str, float] | None = None,
    *,
    burn_in: float = 300.0,
    duration: float = 600.0,
) -> float:
    """Mean time between upward crossings of v through its mean, after a burn-in (from FHN_Y0).

    For the unforced system this is the limit cycle's period (39.47 for the paper's parameters);
    for the forced, chaotic one it is the mean spike interval (about 25.6).
    """
    key = (system, tuple(sorted(system_params(system, params).items())), burn_in, duration)
    if key not in _PERIODS:
        _PERIODS[key] = _measure_period(system, dict(params or {}), burn_in, duration)
    return _PERIODS[key]


_PERIODS: dict[tuple, float] = {}


def _measure_period(system: str, params: dict, burn_in: float, duration: float) -> float:
    from otgap.data.fhn import simulate

    dt = 0.01
    t = np.arange(0.0, burn_in + duration + dt / 2, dt)
    v = simulate(np.array([FHN_Y0]), t, system=system, params=params)[0, :, 0]
    keep = t >= burn_in
    t, v = t[keep], v[keep]
    level = v.mean()
    up = np.flatnonzero((v[:-1] < level) & (v[1:] >= level))
    if up.size < 2:
        raise ValueError(f"system '{system}' does not oscillate within {duration} time units")
    tc = t[up] + (level - v[up]) / (v[up + 1] - v[up]) * dt  # interpolated crossing times
    return float(np.mean(np.diff(tc)))


# One oscillation of the built-in FitzHugh-Nagumo problems, measured once with
# ``oscillation_period`` (burn-in 300, 600 time units): the unforced limit cycle's period, and the
# forced system's mean spike interval. tests/test_ode_solver.py checks the first independently.
FHN_PERIOD = 39.474
FHN_FORCED_INTERVAL = 25.636


@functools.cache
def _fhn_start() -> tuple[float, float]:
    """FHN_Y0 carried 300 time units along the unforced flow: a state on the limit cycle."""
    from otgap.data.fhn import simulate

    start = simulate(np.array([FHN_Y0]), np.array([0.0, 300.0]), system="fhn")[0, -1]
    return float(start[0]), float(start[1])


def _fhn(name: str, system: str, t_end: float, description: str) -> Problem:
    return Problem(
        name=name,
        f=fhn_field(system),
        y0=_fhn_start(),
        t_span=(0.0, float(t_end)),
        exact=None,
        description=description,
        fhn_system=system,
    )


PROBLEM_NAMES = ("decay", "logistic", "dydx", "fhn", "fhn_forced", "fhn_short")


def get_problem(name: str) -> Problem:
    """A built-in problem by name (see ``PROBLEM_NAMES``)."""
    if name == "decay":
        return _decay()
    if name == "logistic":
        return _logistic()
    if name == "dydx":
        return _dydx()
    if name == "fhn":
        return _fhn(name, "fhn", FHN_PERIOD, "FitzHugh-Nagumo, unforced, one period")
    if name == "fhn_forced":
        return _fhn(
            name, "fhn_forced", FHN_FORCED_INTERVAL, "FitzHugh-Nagumo, forced, one spike interval"
        )
    if name == "fhn_short":
        return _fhn(name, "fhn", 10.0, "FitzHugh-Nagumo, unforced, t in [0, 10]")
    raise ValueError(f"unknown ODE problem '{name}'; built in: {list(PROBLEM_NAMES)}")


def reference_solution(problem: Problem) -> Callable[[np.ndarray], np.ndarray]:
    """The exact solution, else scipy's DOP853 (rtol = atol = 1e-12) as a dense callable."""
    if problem.exact is not None:
        return problem.exact
    if problem.fhn_system is None:
        raise ValueError(f"problem '{problem.name}' has neither an exact solution nor a reference")
    from scipy.integrate import solve_ivp

    p = system_params(problem.fhn_system)

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return vector_field(t, y, problem.fhn_system, p)

    sol = solve_ivp(
        rhs, problem.t_span, problem.y0, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True
    )
    if not sol.success:
        raise RuntimeError(f"DOP853 failed on problem '{problem.name}': {sol.message}")
    return lambda t: sol.sol(np.asarray(t, dtype=np.float64)).T


def evaluate_problem(
    problem: Problem, *, seed: int = 0, n_eval: int = 1001, **options: Any
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Solve a built-in problem and score it against its reference on ``n_eval`` even times.

    Returns (scalars, arrays). Scalars: max_abs_error, rms_error (over times and components),
    n_collocation (all windows), n_params (one window's network), n_windows, train_seconds,
    train_cpu_seconds, max_final_loss. Arrays: ``t``, ``pred``, ``ref`` (n_eval, d), the training
    record (``record_*``) and ``window_end_error``, the max abs error at each window's end (how
    errors pass on).
    """
    ref = reference_solution(problem)
    sol = solve_ode(problem.f, problem.y0, problem.t_span, seed=seed, reference=ref, **options)
    t = np.linspace(problem.t_span[0], problem.t_span[1], n_eval)
    pred, truth = sol(t), ref(t)
    err = np.abs(pred - truth)
    ends = np.asarray([b for _, b in sol.record.window_bounds])
    window_end_error = np.max(np.abs(sol(ends) - ref(ends)), axis=1)
    scalars = {
        "max_abs_error": float(err.max()),
        "rms_error": float(np.sqrt(np.mean(err**2))),
        "n_collocation": int(sol.record.n_collocation),
        "n_params": int(sol.n_params),
        "n_windows": len(sol.windows),
        "train_seconds": float(sol.record.train_seconds),
        "train_cpu_seconds": float(sol.record.train_cpu_seconds),
        "max_final_loss": float(max(sol.record.final_loss)),
    }
    arrays = {
        "t": t,
        "pred": pred,
        "ref": truth,
        "window_end_error": window_end_error,
        **{f"record_{k}": v for k, v in sol.record.as_arrays().items()},
    }
    return scalars, arrays
