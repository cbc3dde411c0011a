"""Networks that solve a KNOWN ordinary differential equation (Lagaris et al. 1998; the ODE-solving networks of docs/sources.md#the-ode-solving-networks).

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
``window`` (default 2.5 time units, from the sweep in docs/ode_solver.md); window k starts from
the state that window k-1 predicts at its end, so the initial condition of every window is again exact by construction, and every
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

Error control. A small residual loss does not mean a small error: seed 2 of the FHN period
ended its last window with a loss of 1e-5 and an error of 0.12, because the fast jump amplifies
the defect. After training, each window's error is therefore estimated a posteriori from the
defect r = g' - f(t, g), integrated along the window through the linearised flow
(``error_estimate``: e' = J e + r, RK4 on ``n_check`` steps, with the estimate carried over from
the earlier windows), which tracks the true max abs error to a few per cent on the built-in
problems (docs/ode_solver.md). A window whose estimate exceeds ``tol`` is halved and solved again
(``max_splits`` times at most); if it still misses, ``solve_ode`` raises ``ODEToleranceError``
naming the window, the estimate and the tolerance, or, with ``on_failure='flag'``, returns the
solution with ``failed`` set. The defaults were chosen from the sweep over seeds 0-4 in
docs/ode_solver.md.
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
    """Settings of ``solve_ode``; the defaults come from the sweep in docs/ode_solver.md.

    ``window``: longest window of the time-marching in time units (None: one window over the
    whole span). ``n_collocation``: equally spaced points per window (both ends included).
    ``adam_steps`` at ``adam_lr``, then at most ``lbfgs_steps`` L-BFGS iterations (fewer when
    the gradient vanishes). ``record_every``: iterations between entries of the
    training record.

    Error control: ``tol`` is the bound on the estimated max abs error (None: estimate only,
    never split or fail); a window whose estimate exceeds it is halved and solved again, at most
    ``max_splits`` times in a row; ``n_check`` RK4 steps per window integrate the estimate.
    ``on_failure``: "raise" (an ``ODEToleranceError`` naming the window, the estimate and
    ``tol``) or "flag" (go on; the solution's ``failed`` is True and ``failures`` lists the
    windows).
    """

    hidden: int = 16
    depth: int = 2
    n_collocation: int = 32
    adam_steps: int = 100
    adam_lr: float = 1e-2
    lbfgs_steps: int = 200
    window: float | None = 2.5
    record_every: int = 10
    min_scale: float = 0.1
    tol: float | None = 1e-2
    max_splits: int = 3
    n_check: int = 128
    on_failure: str = "raise"

    def __post_init__(self) -> None:
        positive = ("hidden", "depth", "n_collocation", "record_every", "n_check")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise ValueError(f"option '{key}' must be >= 1, got {getattr(self, key)}")
        if self.n_collocation < 2:
            raise ValueError(f"option 'n_collocation' must be >= 2, got {self.n_collocation}")
        for key in ("adam_steps", "lbfgs_steps", "max_splits"):
            if int(getattr(self, key)) < 0:
                raise ValueError(f"option '{key}' must be >= 0, got {getattr(self, key)}")
        if self.adam_steps + self.lbfgs_steps == 0:
            raise ValueError("options 'adam_steps' and 'lbfgs_steps' are both 0: nothing trains")
        if not self.adam_lr > 0:
            raise ValueError(f"option 'adam_lr' must be positive, got {self.adam_lr}")
        if self.window is not None and not self.window > 0:
            raise ValueError(f"option 'window' must be positive or None, got {self.window}")
        if self.tol is not None and not self.tol > 0:
            raise ValueError(f"option 'tol' must be positive or None, got {self.tol}")
        if self.on_failure not in ("raise", "flag"):
            raise ValueError(
                f"option 'on_failure' must be 'raise' or 'flag', got {self.on_failure!r}"
            )

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

    ``window`` numbers every trained window in order, rejected ones included (a rejected window
    was split and solved again). ``error`` holds the max abs error against the reference on the
    window's collocation points when ``solve_ode`` was given one (NaN otherwise). Per accepted
    window: ``window_bounds``, ``final_loss``, ``estimate`` (max over the window of the
    estimated error, carried over from earlier windows), ``local_estimate`` (the same, counting
    this window's defect only) and ``splits`` (halvings of the initial window);
    ``rejected_bounds`` lists the windows that were split. Seconds include the error estimates
    and the rejected windows. ``train_seconds`` excludes the time spent
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
    estimate: list[float] = field(default_factory=list)
    local_estimate: list[float] = field(default_factory=list)
    splits: list[int] = field(default_factory=list)
    rejected_bounds: list[tuple[float, float]] = field(default_factory=list)
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
            "estimate": np.asarray(self.estimate, dtype=np.float64),
            "local_estimate": np.asarray(self.local_estimate, dtype=np.float64),
            "splits": np.asarray(self.splits, dtype=np.int64),
        }


class ODESolution:
    """The trained piecewise trial solution: call it with times (T,) to get states (T, d).

    ``failed`` and ``failures`` (window, t_start, t_end, estimate, tol of each window that missed
    the tolerance) say whether the error control was met; ``error_estimate`` is the largest
    estimate. Times must lie in the solved span; a time on a window boundary is taken from the later window
    (both agree there up to that window's start, which is exact by construction). Returns a numpy
    float64 array for numpy input and a float64 tensor for tensor input.
    """

    def __init__(
        self,
        windows: Sequence[TrialSolution],
        t_span: tuple[float, float],
        record: TrainingRecord,
        options: SolverOptions,
        failures: Sequence[dict[str, float]] = (),
    ):
        self.windows = list(windows)
        self.t_span = (float(t_span[0]), float(t_span[1]))
        self.record = record
        self.options = options
        self.starts = np.asarray([w.t0 for w in self.windows])
        self.failures = list(failures)

    @property
    def failed(self) -> bool:
        """True when some window's error estimate exceeds ``options.tol`` (on_failure='flag')."""
        return bool(self.failures)

    @property
    def error_estimate(self) -> float:
        """The largest estimated max abs error over all windows."""
        return float(max(self.record.estimate))

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


class ODEToleranceError(RuntimeError):
    """The error estimate of a window exceeds the tolerance after every allowed split."""

    def __init__(self, window: int, t_start: float, t_end: float, estimate: float, tol: float):
        self.window, self.t_start, self.t_end = window, t_start, t_end
        self.estimate, self.tol = estimate, tol
        super().__init__(
            f"solve_ode: window {window} [{t_start:.6g}, {t_end:.6g}] has an estimated max abs "
            f"error of {estimate:.3g} > tol {tol:.3g} after the allowed splits; lower 'window', "
            "raise 'max_splits' or 'tol', or pass on_failure='flag' to get the solution with "
            "failed=True"
        )


def _jacobian(f: VectorField, t: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """df/dy at each (t_i, y_i): (T, d, d), row j = gradient of component j."""
    y = y.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        fy = f(t, y)
        d = y.shape[1]
        if not fy.requires_grad:  # f does not depend on y
            return np.zeros((y.shape[0], d, d))
        rows = []
        for j in range(d):
            (grad,) = torch.autograd.grad(
                fy[:, j].sum(), y, retain_graph=j < d - 1, allow_unused=True
            )
            rows.append(torch.zeros_like(y) if grad is None else grad)
    return torch.stack(rows, dim=1).numpy()


def error_estimate(
    model: TrialSolution,
    f: VectorField,
    a: float,
    b: float,
    n_steps: int,
    e_start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A-posteriori estimate of the error e = g - y on the window [a, b] from its defect.

    The defect r = g' - f(t, g) is known everywhere (not only at the collocation points), and
    e' = g' - f(t, y) = r + f(t, g) - f(t, g - e) = J(t) e + r(t) + O(|e|^2), J = df/dy along g.
    So the defect, integrated along the window through the linearised flow, estimates the error:
    RK4 with ``n_steps`` steps on e' = J e + r. Two starts: e(a) = 0 (this window's own error)
    and e(a) = ``e_start`` (the estimate carried over from the previous window). Unlike the
    residual, this weighs the defect by how the flow amplifies it (the fast jumps of a relaxation
    oscillation) and sees it between collocation points.

    Returns (times (n_steps + 1,), local (n_steps + 1, d), carried (n_steps + 1, d)).
    """
    d = model.y0.shape[0]
    t = torch.linspace(a, b, 2 * n_steps + 1, dtype=torch.float64)
    g, dg = model.value_and_derivative(t)
    g, dg = g.detach(), dg.detach()
    with torch.no_grad():
        r = (dg - f(t, g)).numpy()
    jac = _jacobian(f, t, g)
    h = (b - a) / n_steps
    e = np.zeros((d, 2))
    if e_start is not None:
        e[:, 1] = e_start
    out = np.empty((n_steps + 1, d, 2))
    out[0] = e

    def rate(i: int, x: np.ndarray) -> np.ndarray:
        return jac[i] @ x + r[i][:, None]

    for n in range(n_steps):
        i = 2 * n
        k1 = rate(i, e)
        k2 = rate(i + 1, e + 0.5 * h * k1)
        k3 = rate(i + 1, e + 0.5 * h * k2)
        k4 = rate(i + 2, e + h * k3)
        e = e + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        out[n + 1] = e
    return t[::2].numpy(), out[:, :, 0], out[:, :, 1]


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
    Error control (see ``error_estimate``): after training, each window's error is estimated
    from its defect; above ``tol`` the window is halved and solved again (at most
    ``max_splits`` times), and a window that still misses ``tol`` raises ``ODEToleranceError``
    unless ``on_failure='flag'``. Same seed, same machine -> same numbers. Returns an
    ``ODESolution`` with ``.record``, ``.failed``, ``.failures`` and ``.error_estimate``.
    """
    opts = SolverOptions.from_mapping(options)
    y0_t, t0, t1 = _check_problem(f, y0, t_span)
    edges = _window_edges(t0, t1, opts.window)
    pending = [(float(edges[k]), float(edges[k + 1]), 0) for k in range(len(edges) - 1)]
    record = TrainingRecord()
    windows: list[TrialSolution] = []
    failures: list[dict[str, float]] = []
    start_state = y0_t
    carried = np.zeros(y0_t.shape[0])  # estimated error at the start of the next window
    generator_state = torch.get_rng_state()
    seconds = cpu_seconds = 0.0
    attempt = 0
    try:
        while pending:
            a, b, splits = pending.pop(0)
            torch.manual_seed(int(seed) * 1_000_003 + attempt)
            with torch.no_grad():
                slope = f(torch.tensor([a], dtype=torch.float64), start_state[None])[0]
            scale = torch.clamp(slope.abs(), min=opts.min_scale)
            model = TrialSolution(start_state, a, b - a, opts.hidden, opts.depth, slope, scale)
            t_col = torch.linspace(a, b, opts.n_collocation, dtype=torch.float64)
            begin, begin_cpu = time.perf_counter(), time.process_time()
            final, ref_wall, ref_cpu = _train_window(
                model, f, t_col, opts, record, attempt, reference
            )
            attempt += 1
            for p in model.parameters():
                p.requires_grad_(False)
            _, local, total = error_estimate(model, f, a, b, opts.n_check, carried)
            seconds += time.perf_counter() - begin - ref_wall
            cpu_seconds += time.process_time() - begin_cpu - ref_cpu
            est = float(np.max(np.abs(total)))
            if not math.isfinite(est):
                raise FloatingPointError(f"window [{a}, {b}]: the error estimate is {est}")
            if opts.tol is not None and est > opts.tol:
                if splits < opts.max_splits:
                    middle = 0.5 * (a + b)
                    pending[:0] = [(a, middle, splits + 1), (middle, b, splits + 1)]
                    record.rejected_bounds.append((a, b))
                    continue
                failure = {"window": len(windows), "t_start": a, "t_end": b, "estimate": est}
                failures.append({**failure, "tol": float(opts.tol)})
                if opts.on_failure == "raise":
                    raise ODEToleranceError(len(windows), a, b, est, float(opts.tol))
            record.window_bounds.append((a, b))
            record.final_loss.append(final)
            record.estimate.append(est)
            record.local_estimate.append(float(np.max(np.abs(local))))
            record.splits.append(splits)
            carried = total[-1]
            with torch.no_grad():
                start_state = model(torch.tensor([b], dtype=torch.float64))[0]
            if not torch.isfinite(start_state).all():
                raise FloatingPointError(f"window [{a}, {b}] ended in a non-finite state")
            windows.append(model)
    finally:
        torch.set_rng_state(generator_state)
    record.n_collocation = opts.n_collocation * len(windows)
    record.train_seconds = seconds
    record.train_cpu_seconds = cpu_seconds
    record.n_params = sum(p.numel() for p in windows[0].parameters())
    return ODESolution(windows, (t0, t1), record, opts, failures)


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
    rhs: Callable[[float, np.ndarray], np.ndarray] | None = None  # numpy f(t, y) for scipy


def _decay(gamma: float = 2.0, g0: float = 10.0) -> Problem:
    return Problem(
        name="decay",
        f=lambda t, y: -gamma * y,
        y0=(g0,),
        t_span=(0.0, 1.0),
        exact=lambda t: (g0 * np.exp(-gamma * np.asarray(t)))[:, None],
        description=f"g' = -{gamma:g} g, g(0) = {g0:g}",
        rhs=lambda t, y: -gamma * y,
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
        rhs=lambda t, y: alpha * y * (cap - y),
    )


def _dydx() -> Problem:
    return Problem(
        name="dydx",
        f=lambda t, y: t.unsqueeze(-1).expand_as(y),
        y0=(0.0,),
        t_span=(0.0, 1.0),
        exact=lambda t: (0.5 * np.asarray(t) ** 2)[:, None],
        description="dy/dx = x, y(0) = 0 (the ODE-solving networks' example)",
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
        rhs=functools.partial(_fhn_rhs, system=system, params=system_params(system)),
    )


def _fhn_rhs(t: float, y: np.ndarray, system: str, params: Mapping[str, float]) -> np.ndarray:
    return vector_field(t, y, system, params)


# Van der Pol in Lienard form, x' = mu (x - x^3/3 - w), w' = x / mu: a relaxation oscillation
# whose fast jumps run at rate ~mu (here 5) between slow branches, with bounded states
# (|x| <= 2.03, |w| <= 0.67). Period 11.6122 for mu = 5 (DOP853, rtol = atol = 1e-12, mean
# over 8 periods after 100 time units); tests/test_ode_solver.py checks it independently.
VDP_MU = 5.0
VDP_PERIOD = 11.6122


def _vdp_rhs(t: float, y: np.ndarray, mu: float = VDP_MU) -> np.ndarray:
    x, w = y[..., 0], y[..., 1]
    return np.stack([mu * (x - x**3 / 3.0 - w), x / mu], axis=-1)


def _vdp_field(t: torch.Tensor, y: torch.Tensor, mu: float = VDP_MU) -> torch.Tensor:
    x, w = y[..., 0], y[..., 1]
    return torch.stack([mu * (x - x**3 / 3.0 - w), x / mu], dim=-1)


@functools.cache
def _vdp_start() -> tuple[float, float]:
    """(2, 0) carried 100 time units along the flow (DOP853, tight): a state on the limit cycle."""
    from scipy.integrate import solve_ivp

    sol = solve_ivp(_vdp_rhs, (0.0, 100.0), [2.0, 0.0], method="DOP853", rtol=1e-12, atol=1e-12)
    return float(sol.y[0, -1]), float(sol.y[1, -1])


def _vdp() -> Problem:
    return Problem(
        name="vdp",
        f=_vdp_field,
        y0=_vdp_start(),
        t_span=(0.0, VDP_PERIOD),
        exact=None,
        description=f"Van der Pol (Lienard form), mu = {VDP_MU:g}, one period",
        rhs=_vdp_rhs,
    )


PROBLEM_NAMES = ("decay", "logistic", "dydx", "fhn", "fhn_forced", "fhn_short", "vdp")


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
    if name == "vdp":
        return _vdp()
    raise ValueError(f"unknown ODE problem '{name}'; built in: {list(PROBLEM_NAMES)}")


def reference_solution(problem: Problem) -> Callable[[np.ndarray], np.ndarray]:
    """The exact solution, else scipy's DOP853 (rtol = atol = 1e-12) as a dense callable."""
    if problem.exact is not None:
        return problem.exact
    if problem.rhs is None:
        raise ValueError(f"problem '{problem.name}' has neither an exact solution nor a reference")
    from scipy.integrate import solve_ivp

    sol = solve_ivp(
        problem.rhs,
        problem.t_span,
        problem.y0,
        method="DOP853",
        rtol=1e-12,
        atol=1e-12,
        dense_output=True,
    )
    if not sol.success:
        raise RuntimeError(f"DOP853 failed on problem '{problem.name}': {sol.message}")
    return lambda t: sol.sol(np.asarray(t, dtype=np.float64)).T


CLASSICAL = {"method": "DOP853", "rtol": 1e-6, "atol": 1e-9}


def classical_solve(
    problem: Problem,
    *,
    method: str = CLASSICAL["method"],
    rtol: float = CLASSICAL["rtol"],
    atol: float = CLASSICAL["atol"],
    n_eval: int = 1001,
    repeats: int = 5,
) -> tuple[dict[str, Any], np.ndarray]:
    """scipy's ``solve_ivp`` on the problem's numpy right-hand side at the stated tolerances.

    The error is scored like the networks' (max abs and RMS error against ``reference_solution``
    on ``n_eval`` even times, from the dense output); the time is the fastest of ``repeats``
    solves (wall and CPU seconds), with ``n_rhs`` right-hand-side evaluations. Returns
    (scalars, max abs error over components at the ``n_eval`` times).
    """
    from scipy.integrate import solve_ivp

    if problem.rhs is None:
        raise ValueError(f"problem '{problem.name}' has no numpy right-hand side")
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        sol = solve_ivp(
            problem.rhs,
            problem.t_span,
            problem.y0,
            method=method,
            rtol=rtol,
            atol=atol,
            dense_output=True,
        )
        wall.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    if not sol.success:
        raise RuntimeError(f"{method} failed on problem '{problem.name}': {sol.message}")
    t = np.linspace(problem.t_span[0], problem.t_span[1], n_eval)
    err = np.abs(sol.sol(t).T - reference_solution(problem)(t))
    scalars = {
        "method": method,
        "rtol": float(rtol),
        "atol": float(atol),
        "max_abs_error": float(err.max()),
        "rms_error": float(np.sqrt(np.mean(err**2))),
        "seconds": float(min(wall)),
        "cpu_seconds": float(min(cpu)),
        "n_rhs": int(sol.nfev),
    }
    return scalars, err.max(axis=1)


def evaluate_problem(
    problem: Problem, *, seed: int = 0, n_eval: int = 1001, **options: Any
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Solve a built-in problem and score it against its reference on ``n_eval`` even times.

    Returns (scalars, arrays). Scalars: max_abs_error, rms_error (over times and components),
    error_estimate (the solver's own, largest over windows), failed (0/1: a window missed
    ``tol``; only with on_failure='flag', else the solve raises), n_collocation (all windows),
    n_params (one window's network), n_windows, n_rejected (windows split), train_seconds,
    train_cpu_seconds, max_final_loss. Arrays: ``t``, ``pred``, ``ref`` (n_eval, d), the training
    record (``record_*``), ``window_end_error`` (max abs error at each window's end: how errors
    pass on) and ``window_error`` (max abs error over each window, 65 even times a window), to
    set beside ``record_estimate``.
    """
    ref = reference_solution(problem)
    sol = solve_ode(problem.f, problem.y0, problem.t_span, seed=seed, reference=ref, **options)
    t = np.linspace(problem.t_span[0], problem.t_span[1], n_eval)
    pred, truth = sol(t), ref(t)
    err = np.abs(pred - truth)
    bounds = np.asarray(sol.record.window_bounds, dtype=np.float64)
    ends = bounds[:, 1]
    window_end_error = np.max(np.abs(sol(ends) - ref(ends)), axis=1)
    window_error = np.empty(len(bounds))
    for k, (a, b) in enumerate(bounds):
        tk = np.linspace(a, b, 65)
        window_error[k] = np.max(
            np.abs(sol.windows[k](torch.as_tensor(tk)).detach().numpy() - ref(tk))
        )
    scalars = {
        "max_abs_error": float(err.max()),
        "rms_error": float(np.sqrt(np.mean(err**2))),
        "error_estimate": float(sol.error_estimate),
        "failed": int(sol.failed),
        "n_collocation": int(sol.record.n_collocation),
        "n_params": int(sol.n_params),
        "n_windows": len(sol.windows),
        "n_rejected": len(sol.record.rejected_bounds),
        "train_seconds": float(sol.record.train_seconds),
        "train_cpu_seconds": float(sol.record.train_cpu_seconds),
        "max_final_loss": float(max(sol.record.final_loss)),
    }
    arrays = {
        "t": t,
        "pred": pred,
        "ref": truth,
        "window_end_error": window_end_error,
        "window_error": window_error,
        **{f"record_{k}": v for k, v in sol.record.as_arrays().items()},
    }
    return scalars, arrays


def evaluate_seeds(
    problem: Problem, seeds: Sequence[int], *, n_eval: int = 1001, **options: Any
) -> tuple[list[dict[str, float]], dict[str, np.ndarray]]:
    """``evaluate_problem`` for every seed in one process; per-window arrays padded with NaN.

    Returns (one scalars dict per seed, with ``seed``; arrays): ``t``, ``ref`` (n_eval, d),
    ``seeds`` (S,), ``pred`` (S, n_eval, d), and per seed and window (S, W): ``window_bounds``
    (S, W, 2), ``window_error``, ``window_estimate``, ``window_local_estimate``, ``final_loss``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError(f"problem '{problem.name}': no seeds given")
    rows, per_seed = [], []
    for seed in seeds:
        scalars, arrays = evaluate_problem(problem, seed=seed, n_eval=n_eval, **options)
        rows.append({"seed": seed, **scalars})
        per_seed.append(arrays)
    width = max(len(a["window_error"]) for a in per_seed)

    def padded(key: str, tail: tuple[int, ...] = ()) -> np.ndarray:
        out = np.full((len(seeds), width, *tail), np.nan)
        for i, a in enumerate(per_seed):
            out[i, : len(a[key])] = a[key]
        return out

    return rows, {
        "t": per_seed[0]["t"],
        "ref": per_seed[0]["ref"],
        "seeds": np.asarray(seeds, dtype=np.int64),
        "pred": np.stack([a["pred"] for a in per_seed]),
        "window_bounds": padded("record_window_bounds", (2,)),
        "window_error": padded("window_error"),
        "window_estimate": padded("record_estimate"),
        "window_local_estimate": padded("record_local_estimate"),
        "final_loss": padded("record_final_loss"),
    }
