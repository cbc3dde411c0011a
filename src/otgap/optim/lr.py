"""Canonical text for a learning rate, shared by the workflow's paths and the scripts."""

from __future__ import annotations

import math


def format_lr(lr: float | int | str) -> str:
    """The shortest text that reads back as the same float: ``0.15``, ``1e-05``, ``2.0``.

    Python's ``repr`` of a float is the shortest string that round-trips, so a value written in the
    config as ``1.5e-1`` or ``0.150`` names the same folder ``lr=0.15``.
    """
    value = float(lr)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a learning rate must be a positive finite number, got {lr!r}")
    return repr(value)


def parse_lr(text: str) -> float:
    """Read a learning rate from a path; reject a spelling that ``format_lr`` would not produce."""
    value = float(text)
    if format_lr(value) != text:
        raise ValueError(f"learning rate '{text}' is not canonical; use '{format_lr(value)}'")
    return value
