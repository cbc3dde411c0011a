"""Bytes an optimizer holds in its per-parameter state (moments, memories, step counters)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Sum of ``nbytes`` over every tensor in ``optimizer.state`` (each storage counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in _tensors(list(optimizer.state.values())):
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key in seen:
            continue
        seen.add(key)
        total += t.untyped_storage().nbytes()
    return total
