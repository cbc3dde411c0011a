"""Numbers as the paper prints them: significant figures, mean +- std, bold best, missing values.

Every number in the paper's text and tables goes through these functions, so a value reads the same
in a table cell, in a macro and in the test that looks for it in the PDF. Rules:

- a single value keeps ``sig`` significant figures (3 by default), written without an exponent
  between 1e-3 and 1e5 and as ``m \\times 10^{e}`` outside that range;
- mean +- std: the std is rounded to two significant figures and the mean to the same decimal
  place (so the std says how many of the mean's digits mean anything);
- a missing value is ``n/a``, a value of a diverged run ``diverged``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MISSING = "n/a"
DIVERGED = "diverged"


def _finite(x: object) -> bool:
    try:
        return x is not None and math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def decimals_for(x: float, sig: int) -> int:
    """Decimal places that leave ``sig`` significant figures of ``x`` (0 for large numbers)."""
    if x == 0:
        return max(sig - 1, 0)
    exponent = math.floor(math.log10(abs(x)))
    return max(sig - 1 - exponent, 0)


def _fixed(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    if text.lstrip("-").strip("0.") == "":  # -0.00 -> 0.00
        text = text.lstrip("-")
    return text


def format_value(x: object, sig: int = 3, *, math_mode: bool = True) -> str:
    """``x`` with ``sig`` significant figures; ``n/a`` when missing or not finite.

    ``math_mode`` returns LaTeX for math mode (``1.2 \\times 10^{-5}``); otherwise a plain
    ``1.2e-05``-free text (the exponent form is then ``1.2x10^-5``).
    """
    if not _finite(x):
        return MISSING
    v = float(x)  # type: ignore[arg-type]
    if v != 0 and not (1e-3 <= abs(v) < 1e5):
        exponent = math.floor(math.log10(abs(v)))
        mantissa = v / 10**exponent
        if round(abs(mantissa), sig - 1) >= 10:  # 9.996e-4 with 3 figures is 1.00e-3
            exponent += 1
            mantissa = v / 10**exponent
        m = _fixed(mantissa, sig - 1)
        return f"{m} \\times 10^{{{exponent}}}" if math_mode else f"{m}x10^{exponent}"
    return _fixed(v, decimals_for(v, sig))


def as_text(x: object, sig: int = 3) -> str:
    """``format_value`` for running text: wrapped in ``$...$`` when it needs math mode."""
    text = format_value(x, sig)
    return f"${text}$" if "\\times" in text else text


def format_setting(x: object) -> str:
    """A configuration value as written in the config (shortest form: 0.0005, 1500, 0.15)."""
    if not _finite(x):
        return MISSING
    v = float(x)  # type: ignore[arg-type]
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    text = f"{v:g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"${mantissa} \\times 10^{{{int(exponent)}}}$"
    return text


def format_mean_std(mean: object, std: object = None, *, sig: int = 3) -> tuple[str, str | None]:
    """(mean, std) as strings: std to 2 significant figures, mean to the std's decimal place.

    Without a finite std (one seed) the mean keeps ``sig`` significant figures and std is None.
    """
    if not _finite(mean):
        return MISSING, None
    m = float(mean)  # type: ignore[arg-type]
    if not _finite(std) or float(std) == 0:  # type: ignore[arg-type]
        return format_value(m, sig), None
    s = float(std)  # type: ignore[arg-type]
    if not (1e-5 <= abs(s) < 1e5 and abs(m) < 1e5):
        return format_value(m, sig), format_value(s, 2)
    d = decimals_for(s, 2)
    return _fixed(m, d), _fixed(s, d)


def mean_std_cell(
    mean: object,
    std: object = None,
    *,
    sig: int = 3,
    bold: bool = False,
    mark: str = "",
    diverged: int = 0,
    n: int | None = None,
) -> str:
    """A LaTeX table cell ``$m \\pm s$``; bold when best; ``mark`` appended as a superscript.

    ``diverged`` runs out of ``n`` are said in words: all diverged -> "diverged", some -> the
    mean of the others with "(k/n diverged)".
    """
    if diverged and (n is None or diverged >= n):
        return DIVERGED
    m, s = format_mean_std(mean, std, sig=sig)
    if m == MISSING:
        return MISSING
    body = m if s is None else f"{m} \\pm {s}"
    if bold:
        body = f"\\mathbf{{{body}}}"
    cell = f"${body}{mark}$"
    if diverged:
        cell += f" ({diverged}/{n} diverged)"
    return cell


def best_index(values: Sequence[object], *, lower_is_better: bool = True) -> int | None:
    """Index of the best finite value, or None when there is none (ties: the first)."""
    finite = [(float(v), i) for i, v in enumerate(values) if _finite(v)]  # type: ignore[arg-type]
    if not finite:
        return None
    key = min if lower_is_better else max
    return key(finite, key=lambda p: p[0])[1]


def format_percent(fraction: object, sig: int = 3) -> str:
    """A fraction in [0, 1] as a percentage with ``sig`` significant figures (no % sign)."""
    if not _finite(fraction):
        return MISSING
    return as_text(100 * float(fraction), sig)  # type: ignore[arg-type]
