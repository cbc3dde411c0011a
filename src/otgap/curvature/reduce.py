"""Exact reduction of the input layer's Hessian block when the batch is narrower than the input.

If the first layer is ``nn.Linear`` acting on the (flattened) inputs ``X`` (``N x d``), the loss
depends on its weight ``W`` (``h x d``) only through ``W X^T``. With the thin QR factorisation
``X^T = Q R`` (``Q``: ``d x N`` with orthonormal columns) every sample is ``x_i = Q R[:, i]``, so
``W x_i = A z_i`` with ``A = W Q`` (``h x N``) and ``z_i = R[:, i]``: the loss is a function of
``A``. Writing ``J: V -> V Q`` for the map of weight directions (its rows are orthonormal,
``J J^T = I``), the Hessian over the model's parameters is ``J^T H_A J`` on the ``W`` block (and
the identity map on every other parameter). Hence, exactly:

* the spectrum of ``H`` is that of the reduced Hessian ``H_A`` plus ``h (d - N)`` zeros, whose
  eigenvectors are the weight directions with ``V Q = 0`` (all other parameters zero);
* an eigenvector ``u`` of ``H_A`` maps to the unit eigenvector ``J^T u`` (``U Q^T`` on the
  ``W`` block) with the same eigenvalue and residual.

For the paper's A.2 setting (MLP 2352-256-128-9, sharpness on 256 samples) a Hessian-vector
product then touches a 256 x 256 instead of a 256 x 2352 first-layer weight: 100k instead of
637k unknowns and ~3x cheaper products (``benchmarks/curvature.py``).

When it is applied (:func:`find_input_layer`), the first ``nn.Linear`` (in ``model.modules()``
order) with ``in_features == d`` and a trainable, unshared weight, if ``N < d``. Whether that
layer really consumes the inputs is not assumed but checked on every forward: inside
:meth:`InputLayerReduction.active` the layer's ``forward`` is replaced by one that first checks
its argument *is* the flattened inputs (same memory, or equal values) and raises
:class:`NotReducible` otherwise; the caller also checks that ``W`` itself no longer appears in the
loss's graph (weight tying, a penalty on ``W``). Either failure makes the caller fall back to the
unreduced operator. The original ``forward`` is always restored; parameters are never written.

``Q`` and ``R`` are cached per inputs tensor (weak reference + version counter), so tracking on
a fixed batch pays the factorisation (~10 ms on the benchmark box) once.
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NotReducible(RuntimeError):
    """The input-layer reduction does not apply to this model/batch (the caller falls back)."""


_MISSING = object()
_QR_CACHE: dict[int, tuple[weakref.ref, int, Tensor, Tensor]] = {}
_QR_CACHE_SIZE = 4


def _thin_qr(x_flat: Tensor, inputs: Tensor) -> tuple[Tensor, Tensor]:
    """``Q`` (``d x N``) and ``Z = R^T`` (``N x N``) with ``X^T = Q R``, cached per tensor."""
    key = id(inputs)
    hit = _QR_CACHE.get(key)
    if hit is not None:
        ref, version, q, z = hit
        if ref() is inputs and inputs._version == version and q.dtype == x_flat.dtype:
            return q, z
    q, r = torch.linalg.qr(x_flat.t(), mode="reduced")
    z = r.t().contiguous()
    for stale in [k for k, (ref, *_) in _QR_CACHE.items() if ref() is None]:
        del _QR_CACHE[stale]
    while len(_QR_CACHE) >= _QR_CACHE_SIZE:
        del _QR_CACHE[next(iter(_QR_CACHE))]
    _QR_CACHE[key] = (weakref.ref(inputs), inputs._version, q, z)
    return q, z


def find_input_layer(model: nn.Module, inputs: Tensor) -> nn.Linear | None:
    """The layer the reduction would apply to, or None (see the module docstring)."""
    if not isinstance(inputs, Tensor) or inputs.dim() < 2 or not inputs.is_floating_point():
        return None
    n, d = int(inputs.shape[0]), math.prod(inputs.shape[1:])
    if n >= d:
        return None
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.in_features == d:
            weight = module.weight
            holders = sum(1 for m in model.modules() for p in m._parameters.values() if p is weight)
            if not weight.requires_grad or holders != 1 or weight.dtype != inputs.dtype:
                return None
            return module
    return None


class InputLayerReduction:
    """Reduced coordinates for the input layer of ``model`` on ``inputs`` (module docstring).

    ``params`` are the model's trainable parameters in order; ``index`` is the position of the
    input layer's weight among them. ``to_reduced``/``to_full`` map flat vectors between the
    model's parameter space (``n_full``) and the reduced one (``n_reduced``).
    """

    def __init__(self, model: nn.Module, inputs: Tensor, params: list[Tensor]) -> None:
        layer = find_input_layer(model, inputs)
        if layer is None:
            raise NotReducible("no trainable nn.Linear on the inputs with in_features > batch")
        self.layer, self.weight = layer, layer.weight
        self.index = next(i for i, p in enumerate(params) if p is layer.weight)
        self.x_flat = inputs.reshape(inputs.shape[0], -1)
        with torch.no_grad():
            self.q, self.z = _thin_qr(self.x_flat, inputs)
        self.reduced_weight: Tensor | None = None  # W Q, taken on entering (the weight then)
        self.sizes = [p.numel() for p in params]
        self.offset = sum(self.sizes[: self.index])
        self.h, self.d = self.weight.shape
        self.r = self.q.shape[1]
        self.n_full = sum(self.sizes)
        self.n_reduced = self.n_full - self.h * (self.d - self.r)
        self.calls = 0

    # -- the patched layer ---------------------------------------------------------------------
    def _forward(self, inp: Tensor) -> Tensor:
        x = self.x_flat
        same = (
            inp.shape == x.shape
            and inp.dtype == x.dtype
            and inp.device == x.device
            and (
                (inp.data_ptr() == x.data_ptr() and inp.stride() == x.stride())
                or torch.equal(inp, x)
            )
        )
        if not same:
            raise NotReducible("the input layer does not receive the batch's inputs")
        self.calls += 1
        return F.linear(self.z, self.reduced_weight, self.layer.bias)

    def _reduce_weight(self) -> Tensor:
        with torch.no_grad():
            return (self.weight.detach() @ self.q).requires_grad_(True)

    def __enter__(self) -> InputLayerReduction:
        self.reduced_weight = self._reduce_weight()  # the weight as it is now
        self._saved = self.layer.__dict__.get("forward", _MISSING)
        self.layer.forward = self._forward
        self.calls = 0
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is _MISSING:
            self.layer.__dict__.pop("forward", None)
        else:
            self.layer.forward = self._saved

    # -- coordinates ------------------------------------------------------------------------------
    def params(self, params: list[Tensor]) -> list[Tensor]:
        """``params`` with the input layer's weight replaced by the reduced weight."""
        out = list(params)
        out[self.index] = self.reduced_weight
        return out

    def _split(self, v: Tensor, width: int) -> tuple[Tensor, Tensor, Tensor]:
        lo, hi = self.offset, self.offset + self.h * width
        return v[..., :lo], v[..., lo:hi].reshape(*v.shape[:-1], self.h, width), v[..., hi:]

    def to_reduced(self, v: Tensor) -> Tensor:
        """Flat model-space vector(s) ``(..., n_full)`` -> reduced ``(..., n_reduced)``."""
        head, block, tail = self._split(v, self.d)
        return torch.cat([head, (block @ self.q).flatten(-2), tail], dim=-1)

    def to_full(self, u: Tensor) -> Tensor:
        """Reduced vector(s) ``(..., n_reduced)`` -> model space (norms preserved)."""
        head, block, tail = self._split(u, self.r)
        return torch.cat([head, (block @ self.q.t()).flatten(-2), tail], dim=-1)

    def null_vectors(self, count: int, generator: torch.Generator | None) -> Tensor:
        """``(count, n_full)`` orthonormal eigenvectors of eigenvalue 0 (weight block ``V Q = 0``)."""
        q = self.q
        v = torch.randn(count, self.h, self.d, dtype=q.dtype, device=q.device, generator=generator)
        v = v - (v @ q) @ q.t()
        basis, _ = torch.linalg.qr(v.reshape(count, -1).t(), mode="reduced")
        out = torch.zeros(count, self.n_full, dtype=q.dtype, device=q.device)
        out[:, self.offset : self.offset + self.h * self.d] = basis.t()
        return out
