"""Matrix-free Hessian-vector products of a training loss over a model's trainable parameters.

The operator is kept apart from the eigen/trace algorithms: those only see ``matvec(v) -> Hv`` on
flat vectors of length ``n`` (the trainable parameters concatenated in ``model.parameters()``
order). Three ways to compute ``Hv`` are offered because their costs differ by model and device
(``benchmarks/curvature.py`` measures them):

``"reuse"``
    Build the gradient graph once (``create_graph=True``) and differentiate ``g . v`` for each
    ``v``; one backward-of-backward per product, the graph stays alive between products.
``"double"``
    Recompute forward, gradient (with graph) and the second backward for every product; memory is
    released after each product.
``"fwd"``
    Forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad`` through
    ``torch.func.functional_call``; no graph kept between products. ``loss_fn`` and the model must
    be ``torch.func`` compatible (no ``.item()``, no in-place updates of inputs).

Chunking (``chunk_size``): for a loss that is a *mean over samples*, the whole-batch Hessian is
``sum_c (len_c / N) H_c`` with ``H_c`` the Hessian of the loss on chunk ``c``; products are
accumulated chunk by chunk. ``"double"`` and ``"fwd"`` then hold one chunk's graph at a time
(bounded memory); ``"reuse"`` keeps every chunk's graph (memory grows with N). Losses that are
not per-sample means (sums, batch-coupled terms such as BatchNorm in training mode, pairwise
losses) must be given whole: leave ``chunk_size=None``.

Model state: inside the operator's context the whole model is put in ``eval()`` mode by default,
so BatchNorm uses its running statistics (the Hessian of a loss using batch statistics is not a
per-sample mean, and every forward would update the running statistics) and dropout is off (the
Hessian of a random loss is not defined). On exit the train/eval flag of every submodule, every
buffer (BatchNorm running mean/var, ``num_batches_tracked``) and every ``.grad`` are restored
exactly; parameters are never written. Products use ``torch.autograd.grad`` / ``torch.func``,
which never accumulate into ``.grad``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from .reduce import InputLayerReduction, NotReducible

HVPMethod = Literal["auto", "reuse", "double", "fwd"]
LossFn = Callable[[Tensor, Tensor], Tensor]

#: Method for an unchunked batch. Chosen by benchmarks/curvature.py (PathMNIST-shaped MLP, CPU):
#: one product cost ~1.2 gradients with graph reuse (plus ~1.1 once to build the graph), ~2.1
#: with double-backward, ~3.6 with forward-over-reverse and ~1.8 with the latter under
#: torch.compile (which first spends 15-70 s compiling).
DEFAULT_METHOD: str = "reuse"
#: Method when the batch is split into chunks: graph reuse would keep every chunk's graph, and
#: double-backward was measured cheaper than forward-over-reverse.
DEFAULT_CHUNKED_METHOD: str = "double"

_METHODS = ("auto", "reuse", "double", "fwd")


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) pairs that require grad, in ``model.parameters()`` order."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def flatten(tensors: Sequence[Tensor], dtype: torch.dtype | None = None) -> Tensor:
    """Concatenate tensors into one flat vector (the layout every algorithm works in)."""
    return torch.cat([t.reshape(-1).to(dtype) if dtype else t.reshape(-1) for t in tensors])


def unflatten(vec: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector into views shaped like ``like`` (cast to each tensor's dtype)."""
    out, offset = [], 0
    for t in like:
        n = t.numel()
        out.append(vec[offset : offset + n].view(t.shape).to(t.dtype))
        offset += n
    return out


class ModelState:
    """Snapshot of everything a curvature computation might disturb, restorable exactly.

    Buffers are only written back when they changed, so a caller's autograd graph that saved a
    buffer (e.g. eval-mode BatchNorm) is not invalidated by a version-counter bump.
    """

    def __init__(self, model: nn.Module) -> None:
        self.modes = [(m, m.training) for m in model.modules()]
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()]
        self.grads = [(p, p.grad) for p in model.parameters()]

    def restore(self) -> None:
        for module, training in self.modes:
            module.training = training
        with torch.no_grad():
            for buf, saved in self.buffers:
                if not torch.equal(buf, saved):
                    buf.copy_(saved)
        for p, g in self.grads:
            if p.grad is not g:
                p.grad = g


def _batch_size(inputs: Tensor, targets: Tensor) -> int:
    if not isinstance(inputs, Tensor) or not isinstance(targets, Tensor):
        raise ValueError("inputs and targets must be tensors (sliced along dim 0 for chunking)")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ValueError("inputs is an empty batch: need at least one sample along dim 0")
    if targets.dim() == 0 or targets.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"targets has batch size {tuple(targets.shape)[:1]}, inputs has {inputs.shape[0]}"
        )
    return int(inputs.shape[0])


class HessianOperator:
    """``v -> H v`` for ``loss_fn(model(inputs), targets)``; use as a context manager.

    Construction only validates; entering puts the model in eval mode (if ``eval_mode``), builds
    the gradient graph for ``"reuse"`` and checks the loss is a finite scalar (``ValueError``
    otherwise); exiting releases graphs and restores the model state (see module docstring).

    ``reduce=True`` (graph reuse on an unchunked batch only) applies the exact input-layer
    reduction of :mod:`otgap.curvature.reduce` when it is valid: products then act on the reduced
    space, ``n`` (set on entering) is its dimension and ``reduction`` maps vectors to and from
    the model's parameter space (``n_params`` entries); ``reduction`` is None when the reduction
    was not applicable or its runtime checks failed (then everything is unreduced).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        inputs: Tensor,
        targets: Tensor,
        *,
        method: HVPMethod = "auto",
        chunk_size: int | None = None,
        eval_mode: bool = True,
        reduce: bool = False,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        named = trainable_parameters(model)
        if not named:
            raise ValueError("model has no trainable parameters (none with requires_grad=True)")
        n_samples = _batch_size(inputs, targets)
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        size = n_samples if chunk_size is None else min(chunk_size, n_samples)
        self.chunks = [
            (inputs[i : i + size], targets[i : i + size], min(size, n_samples - i) / n_samples)
            for i in range(0, n_samples, size)
        ]
        if method == "auto":
            method = DEFAULT_METHOD if len(self.chunks) == 1 else DEFAULT_CHUNKED_METHOD
        self.method: str = method
        self.model, self.loss_fn, self.eval_mode = model, loss_fn, eval_mode
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.n_params = sum(p.numel() for p in self.params)
        self.n = self.n_params
        self.reduction: InputLayerReduction | None = None
        if reduce and method == "reuse" and len(self.chunks) == 1:
            with contextlib.suppress(NotReducible):
                self.reduction = InputLayerReduction(model, inputs, self.params)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.n_matvec = 0
        self.loss: float | None = None
        self._state: ModelState | None = None
        self._grads: list[Tensor] = []

    # -- context management -------------------------------------------------------------------
    def __enter__(self) -> HessianOperator:
        self._state = ModelState(self.model)
        try:
            if self.eval_mode:
                self.model.eval()
            if self.reduction is not None:
                try:
                    with self.reduction:
                        self._prepare(self.reduction)
                    self.n = self.reduction.n_reduced
                except NotReducible:
                    self._grads, self.reduction = [], None
            if self.reduction is None:
                self.n = self.n_params
                self._prepare()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        self._grads = []
        if self._state is not None:
            self._state.restore()
            self._state = None

    def _chunk_loss(self, x: Tensor, y: Tensor) -> Tensor:
        loss = self.loss_fn(self.model(x), y)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        return loss.reshape(())

    def _operator_params(self) -> list[Tensor]:
        """The tensors products differentiate by: the model's, or the reduced ones."""
        return self.params if self.reduction is None else self.reduction.params(self.params)

    def _prepare(self, reduction: InputLayerReduction | None = None) -> None:
        """Check the loss; for ``"reuse"`` keep the weighted gradient with its graph.

        With ``reduction`` (active, i.e. the input layer patched) the graph is built over the
        reduced parameters and :class:`NotReducible` is raised unless the patched layer ran once
        and the original weight is absent from the graph.
        """
        total = 0.0
        params = self.params if reduction is None else reduction.params(self.params)
        if self.method == "reuse":
            acc: list[Tensor | None] = [None] * len(params)
            with torch.enable_grad():
                for x, y, w in self.chunks:
                    loss = self._chunk_loss(x, y)
                    total += w * float(loss.detach())
                    self._check_loss(total)
                    wrt = params if reduction is None else [*params, reduction.weight]
                    grads = torch.autograd.grad(loss, wrt, create_graph=True, allow_unused=True)
                    if reduction is not None:
                        if reduction.calls != 1:
                            raise NotReducible("the input layer did not run exactly once")
                        if grads[-1] is not None:
                            raise NotReducible("the input layer's weight is used elsewhere")
                        grads = grads[:-1]
                    for i, g in enumerate(grads):
                        if g is not None:
                            acc[i] = w * g if acc[i] is None else acc[i] + w * g
            self._grads = [g for g in acc if g is not None and g.requires_grad]
            self._grad_index = [i for i, g in enumerate(acc) if g is not None and g.requires_grad]
        else:
            with torch.no_grad():
                for x, y, w in self.chunks:
                    total += w * float(self._chunk_loss(x, y))
                    self._check_loss(total)
        self.loss = total

    @staticmethod
    def _check_loss(value: float) -> None:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"loss is not finite ({value}); check inputs/targets for NaN/inf")

    # -- products -------------------------------------------------------------------------------
    def matvec(self, v: Tensor) -> Tensor:
        """Return ``H v`` as a flat vector of the operator's dtype/device."""
        if self._state is None:
            raise RuntimeError("HessianOperator.matvec must be called inside `with operator:`")
        if v.shape != (self.n,):
            raise ValueError(f"vector has shape {tuple(v.shape)}, expected ({self.n},)")
        vs = unflatten(v.to(self.device, self.dtype), self._operator_params())
        if self.method == "reuse":
            hv = self._hvp_reuse(vs)
        else:
            one = self._hvp_fwd if self.method == "fwd" else self._hvp_double
            hv = None
            for x, y, w in self.chunks:
                part = one(x, y, vs)
                hv = part.mul_(w) if hv is None else hv.add_(part, alpha=w)
        self.n_matvec += 1
        if not math.isfinite(float(hv.sum())):  # one pass; NaN/inf propagate into the sum
            raise ValueError("Hessian-vector product is not finite (NaN/inf in second derivatives)")
        return hv

    __call__ = matvec

    def _hvp_reuse(self, vs: list[Tensor]) -> Tensor:
        if not self._grads:
            return torch.zeros(self.n, dtype=self.dtype, device=self.device)
        hv = torch.autograd.grad(
            self._grads,
            self._operator_params(),
            grad_outputs=[vs[i] for i in self._grad_index],
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        return flatten(hv, self.dtype)

    def _hvp_double(self, x: Tensor, y: Tensor, vs: list[Tensor]) -> Tensor:
        with torch.enable_grad():
            loss = self._chunk_loss(x, y)
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
            keep = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
            if not keep:
                return torch.zeros(self.n, dtype=self.dtype, device=self.device)
            hv = torch.autograd.grad(
                [grads[i] for i in keep],
                self.params,
                grad_outputs=[vs[i] for i in keep],
                allow_unused=True,
                materialize_grads=True,
            )
        return flatten(hv, self.dtype)

    def _hvp_fwd(self, x: Tensor, y: Tensor, vs: list[Tensor]) -> Tensor:
        from torch.func import functional_call, grad, jvp

        def loss_of(p: dict[str, Tensor], target: Tensor) -> Tensor:
            return self.loss_fn(functional_call(self.model, p, (x,)), target).reshape(())

        primals = {name: p.detach() for name, p in zip(self.names, self.params, strict=True)}
        tangents = dict(zip(self.names, vs, strict=True))
        if y.is_floating_point():
            # Floating targets ride along as duals with a materialised zero tangent: with the
            # implicit (immutable ZeroTensor) tangent, mse_loss's double-backward fails under jvp
            # in torch 2.13.
            _, hv = jvp(grad(loss_of), (primals, y), (tangents, torch.zeros_like(y)))
        else:
            _, hv = jvp(lambda p: grad(loss_of)(p, y), (primals,), (tangents,))
        return flatten([hv[name] for name in self.names], self.dtype)
