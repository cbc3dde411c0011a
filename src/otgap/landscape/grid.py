"""Loss of one model at many parameter vectors, evaluated in batches with ``torch.func``.

A loss landscape needs the loss at every point of a ``G x G`` grid (1600 points for the paper's
40 x 40). Instead of copying each point into the model and running one forward pass per point, the
grid points are stacked into a batch of parameter sets and ``vmap`` maps ``functional_call`` over
them, so one batched forward pass evaluates a whole chunk of points. Chunks of ``chunk_size``
points bound the memory: ``chunk_size * P`` parameter values plus ``chunk_size * batch_size``
activations per layer.

For points on a plane there is an exact shortcut (on by default, ``affine_head``): when the model
is a Sequential (or wraps one) whose first parametrised layer is Linear/Conv, that layer's output
is affine in the plane coordinates, ``h(a, b) = h(origin) + a h(d1) + b h(d2)``, so three passes
of the first layer serve every grid point and only the rest of the network is mapped over points.
For the paper's MLP, whose first layer (2352 x 256) holds 95% of the weights, this is what makes
batching pay on a CPU: ``benchmarks/landscape_grid.py`` measures it against a per-point loop
(mapping the whole model over points is no faster than the loop there, because each point's
forward pass is already one large matrix product).

The model is evaluated in eval mode, with its buffers shared by all points: a BatchNorm layer
normalises with the running statistics the model holds (eval-mode BatchNorm writes no buffer, so
``vmap`` maps it), which belong to one parameter vector; the caller chooses which (the EoS stage
re-estimates them at the trajectory's last snapshot, :func:`recalibrate_batchnorm`). The loss
function must return the mean over the batch, so that batches over samples combine into the exact
mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from otgap.landscape.planes import Plane

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def trainable_parameters(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(name, parameter) of the trainable parameters in ``model.parameters()`` order.

    This is the order of the flattened parameter vectors in the training stage's snapshots.
    """
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for _, p in trainable_parameters(model)])


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def check_supported(model: nn.Module) -> None:
    """Raise a clear error for BatchNorm layers that eval mode cannot use (no running statistics)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats:
            raise ValueError(
                f"layer '{name}' is {type(module).__name__} without running statistics: batched "
                "loss-landscape evaluation runs in eval mode and needs them "
                "(track_running_stats=True)."
            )


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, inputs: torch.Tensor) -> None:
    """Set every BatchNorm layer's running statistics to those of ``inputs`` at the current weights.

    One train-mode forward pass of all of ``inputs`` with momentum ``None`` (a cumulative average,
    which after resetting is exactly this batch's mean and unbiased variance); parameters, the
    train/eval flag and the momenta are left as found. No-op without BatchNorm layers.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    if len(inputs) < 2:
        raise ValueError("recalibrate_batchnorm: need at least 2 inputs for batch statistics")
    was_training = model.training
    momenta = [m.momentum for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        model(inputs)
    finally:
        for m, mom in zip(norms, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)


@dataclass(frozen=True)
class _AffineHead:
    """A model that is ``tail(head(prefix(x)))`` with ``head`` linear in its parameters.

    ``prefix`` holds only parameter- and buffer-free modules (``Flatten``), ``head`` is a
    ``Linear``/``Conv`` layer. Its output at ``origin + a d1 + b d2`` is
    ``head(z; origin) + a head(z; d1) + b head(z; d2)`` exactly, because the layer's output is
    linear in (weight, bias) jointly; so three head passes per batch of samples serve every grid
    point, and only the tail runs per point.
    """

    prefix: nn.Module
    head: nn.Module
    tail: nn.Module
    head_names: tuple[str, ...]  # head parameter names as seen by the head module
    head_slices: tuple[slice, ...]  # their positions in the flat vector
    tail_names: tuple[str, ...]  # tail parameter names as seen by the tail module
    tail_index: torch.Tensor  # positions of the tail's parameters in the flat vector


_LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _find_affine_head(model: nn.Module, x: torch.Tensor) -> _AffineHead | None:
    """The prefix/head/tail split of an ``nn.Sequential`` model (or a wrapper of one), or None.

    A wrapper (a module whose only child is a Sequential and which has no parameters of its own)
    is accepted only if its output equals the Sequential's output on ``x``, which guards against
    forward methods that do more than call the Sequential.
    """
    if isinstance(model, nn.Sequential):
        seq, scope = model, ""
    else:
        children = list(model.named_children())
        own = list(model.named_parameters(recurse=False)) + list(model.named_buffers(recurse=False))
        if len(children) != 1 or not isinstance(children[0][1], nn.Sequential) or own:
            return None
        seq, scope = children[0][1], children[0][0] + "."
    modules = list(seq.named_children())
    first = next((i for i, (_, m) in enumerate(modules) if any(True for _ in m.parameters())), None)
    if first is None or not isinstance(modules[first][1], _LINEAR_LAYERS):
        return None
    if any(any(True for _ in m.buffers()) for _, m in modules[: first + 1]):
        return None
    head_name, head = modules[first]
    if not all(p.requires_grad for p in head.parameters()):
        return None
    offsets, pos = {}, 0
    for n, p in trainable_parameters(model):
        offsets[n] = slice(pos, pos + p.numel())
        pos += p.numel()
    head_names = tuple(n for n, _ in head.named_parameters())
    head_slices = tuple(offsets[f"{scope}{head_name}.{n}"] for n in head_names)
    tail = seq[first + 1 :]
    tail_params = [(n, p) for n, p in tail.named_parameters() if p.requires_grad]
    tail_index = [
        torch.arange(offsets[scope + n].start, offsets[scope + n].stop) for n, _ in tail_params
    ]
    split = _AffineHead(
        prefix=seq[:first],
        head=head,
        tail=tail,
        head_names=head_names,
        head_slices=head_slices,
        tail_names=tuple(n for n, _ in tail_params),
        tail_index=torch.cat(tail_index) if tail_index else torch.zeros(0, dtype=torch.long),
    )
    if seq is not model:
        with torch.no_grad():
            probe = x[: min(len(x), 4)]
            if not torch.equal(model(probe), seq(probe)):
                return None
    return split


class BatchedLoss:
    """Evaluates ``loss_fn(model(inputs), targets)`` at many flat parameter vectors at once.

    ``affine_head=True`` (default) uses the exact shortcut of :class:`_AffineHead` for points on a
    plane when the model allows it (the project's MLP and CNN do); otherwise, and for arbitrary
    vectors, the whole model is mapped over the points.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        chunk_size: int = 64,
        batch_size: int | None = None,
        affine_head: bool = True,
    ) -> None:
        check_supported(model)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if len(inputs) != len(targets) or len(inputs) == 0:
            raise ValueError(f"need as many targets as inputs (> 0): {len(inputs)}, {len(targets)}")
        self.model = model
        self.loss_fn = loss_fn
        self.inputs = inputs
        self.targets = targets
        self.chunk_size = int(chunk_size)
        self.batch_size = int(batch_size) if batch_size else len(inputs)
        params = trainable_parameters(model)
        self.names = [n for n, _ in params]
        self.shapes = [p.shape for _, p in params]
        self.numels = [p.numel() for _, p in params]
        self.n_params = sum(self.numels)
        self.dtype = params[0][1].dtype
        self.device = params[0][1].device
        frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
        self.fixed = {**{n: b.detach() for n, b in model.named_buffers()}, **frozen}
        self.split = _find_affine_head(model, inputs) if affine_head else None

        def point_loss(param_dict, x, y):
            out = functional_call(self.model, {**param_dict, **self.fixed}, (x,))
            return self.loss_fn(out, y)

        self._batched = vmap(point_loss, in_dims=(0, None, None))
        if self.split is not None:
            tail = self.split.tail
            tail_fixed = {n: t.detach() for n, t in tail.named_buffers()}
            tail_fixed |= {n: p.detach() for n, p in tail.named_parameters() if not p.requires_grad}

            def tail_loss(param_dict, h, y):
                return self.loss_fn(functional_call(tail, {**param_dict, **tail_fixed}, (h,)), y)

            self._batched_tail = vmap(tail_loss, in_dims=(0, 0, None))

    @staticmethod
    def _unflatten(flat: torch.Tensor, names, shapes) -> dict[str, torch.Tensor]:
        k = flat.shape[0]
        pieces = torch.split(flat, [math.prod(s) for s in shapes], dim=1)
        return {n: t.reshape(k, *s) for n, t, s in zip(names, pieces, shapes, strict=True)}

    def _batches(self):
        n = len(self.inputs)
        for start in range(0, n, self.batch_size):
            yield (
                self.inputs[start : start + self.batch_size],
                self.targets[start : start + self.batch_size],
            )

    @torch.no_grad()
    def _evaluate(self, count: int, chunk_losses: Callable, prepare: Callable | None = None):
        """Mean loss per point over all samples.

        For each batch of samples, ``prepare(x)`` (optional) computes what all points share, and
        ``chunk_losses(x, y, a, b, shared)`` returns the batch-mean losses of points ``a:b``.
        """
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros(count, dtype=torch.float64, device=self.device)
        try:
            for x, y in self._batches():
                shared = prepare(x) if prepare is not None else None
                for a in range(0, count, self.chunk_size):
                    b = min(a + self.chunk_size, count)
                    total[a:b] += chunk_losses(x, y, a, b, shared).to(torch.float64) * len(x)
        finally:
            self.model.train(was_training)
        return (total / len(self.inputs)).cpu().numpy()

    def at_vectors(self, vectors: np.ndarray | torch.Tensor) -> np.ndarray:
        """Loss at each row of ``vectors`` (``(K, P)`` flat parameter vectors); float64 ``(K,)``."""
        v = torch.as_tensor(np.asarray(vectors), dtype=self.dtype, device=self.device)
        if v.ndim != 2 or v.shape[1] != self.n_params:
            raise ValueError(
                f"parameter vectors must have shape (K, {self.n_params}); got {tuple(v.shape)}"
            )

        def chunk(x, y, a, b, _):
            return self._batched(self._unflatten(v[a:b], self.names, self.shapes), x, y)

        return self._evaluate(v.shape[0], chunk)

    def on_plane(self, plane: Plane, coords: np.ndarray) -> np.ndarray:
        """Loss at ``plane.origin + a d1 + b d2`` for each row ``(a, b)`` of ``coords``.

        Points are built one chunk at a time, so memory never holds all ``K x P`` vectors.
        """
        if plane.origin.shape[0] != self.n_params:
            raise ValueError(
                f"the plane lives in {plane.origin.shape[0]} dimensions but the model has "
                f"{self.n_params} trainable parameters; snapshots and model do not match"
            )
        kw = {"dtype": self.dtype, "device": self.device}
        origin = torch.as_tensor(plane.origin, **kw)
        dirs = torch.as_tensor(plane.directions, **kw)
        c = torch.as_tensor(np.asarray(coords, dtype=np.float64), **kw).reshape(-1, 2)
        if self.split is None:

            def chunk(x, y, a, b, _):
                flat = origin + c[a:b] @ dirs
                return self._batched(self._unflatten(flat, self.names, self.shapes), x, y)

            return self._evaluate(c.shape[0], chunk)

        sp = self.split
        tail_origin, tail_dirs = origin[sp.tail_index], dirs[:, sp.tail_index]
        tail_params = dict(sp.tail.named_parameters())
        tail_shapes = [tail_params[n].shape for n in sp.tail_names]
        head_shapes = [p.shape for _, p in sp.head.named_parameters()]

        def head_out(x: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
            ps = {
                n: vec[s].reshape(shape)
                for n, s, shape in zip(sp.head_names, sp.head_slices, head_shapes, strict=True)
            }
            return functional_call(sp.head, ps, (sp.prefix(x),))

        def prepare(x):  # three head passes per batch of samples, shared by all points
            h0 = head_out(x, origin)
            h12 = torch.stack([head_out(x, dirs[0]).reshape(-1), head_out(x, dirs[1]).reshape(-1)])
            return h0, h12

        def chunk(x, y, a, b, shared):
            h0, h12 = shared  # h = h0 + a h(d1) + b h(d2) for every point, in one addmm
            h = torch.addmm(h0.reshape(1, -1), c[a:b], h12).reshape(b - a, *h0.shape)
            flat = tail_origin + c[a:b] @ tail_dirs
            return self._batched_tail(self._unflatten(flat, sp.tail_names, tail_shapes), h, y)

        return self._evaluate(c.shape[0], chunk, prepare)

    def grid(self, plane: Plane, alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """Loss grid of shape ``(len(betas), len(alphas))``: row ``i`` is ``beta = betas[i]``.

        (Matplotlib's ``meshgrid(alphas, betas)`` convention, so ``contourf(A, B, Z)`` works.)
        """
        aa, bb = np.meshgrid(np.asarray(alphas), np.asarray(betas))
        coords = np.stack([aa.ravel(), bb.ravel()], axis=1)
        return self.on_plane(plane, coords).reshape(aa.shape)


def loss_grid(
    model: nn.Module,
    loss_fn: LossFn,
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    chunk_size: int = 64,
    batch_size: int | None = None,
) -> np.ndarray:
    """Convenience wrapper: the ``(len(betas), len(alphas))`` loss grid over ``plane``."""
    ev = BatchedLoss(model, loss_fn, inputs, targets, chunk_size=chunk_size, batch_size=batch_size)
    return ev.grid(plane, alphas, betas)


def loss_at_point_loop(
    model: nn.Module,
    loss_fn: LossFn,
    vector: np.ndarray,
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> float:
    """Reference: copy one flat vector into the model, run one forward pass, return the loss.

    The model's parameters are restored afterwards. Used by tests and the benchmark.
    """
    params = [p for _, p in trainable_parameters(model)]
    saved = torch.nn.utils.parameters_to_vector(params).detach().clone()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            v = torch.as_tensor(np.asarray(vector), dtype=saved.dtype, device=saved.device)
            torch.nn.utils.vector_to_parameters(v, params)
            return float(loss_fn(model(inputs), targets))
    finally:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(saved, params)
        model.train(was_training)
