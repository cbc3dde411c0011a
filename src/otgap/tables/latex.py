"""LaTeX table building blocks (booktabs) shared by the experiments' tables.

A table is a header row plus sections; each section is an optional italic title spanning all
columns and a list of rows (lists of already formatted cells). Cells are formatted with
``mean_std`` and escaped with ``tex_escape``; nothing here knows about any experiment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: object) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def mean_std(
    mean: float | None,
    std: float | None = None,
    digits: int = 3,
    *,
    bold: bool = False,
    mark: str = "",
) -> str:
    """``$m \\pm s$`` (``--`` for a missing mean, no ``\\pm`` without a finite std).

    ``bold`` sets the numbers in bold math; ``mark`` (e.g. ``^{\\dagger}``) is appended inside the
    math so it stays a superscript.
    """
    if mean is None or not math.isfinite(mean):
        return "--"
    body = f"{mean:.{digits}f}"
    if std is not None and math.isfinite(std):
        body += f" \\pm {std:.{digits}f}"
    if bold:
        body = f"\\mathbf{{{body}}}"
    return f"${body}{mark}$"


def booktabs_table(
    header: Sequence[str],
    sections: Sequence[tuple[str | None, Sequence[Sequence[str]]]],
    align: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A complete ``tabular`` with \\toprule/\\midrule/\\bottomrule.

    ``header`` cells are used as given (escape them first if needed); ``align`` defaults to one
    ``l`` then ``r`` for the remaining columns. ``notes`` become LaTeX comment lines above the
    table (they document what marks mean without needing a caption).
    """
    n = len(header)
    if n == 0:
        raise ValueError("a table needs at least one column")
    align = align or ("l" + "r" * (n - 1))
    if len(align) != n:
        raise ValueError(f"align '{align}' has {len(align)} columns, the header has {n}")
    lines = [f"% {note}" for note in notes]
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(header) + r" \\"]
    for title, rows in sections:
        lines.append(r"\midrule")
        if title is not None:
            lines.append(rf"\multicolumn{{{n}}}{{l}}{{\textit{{{tex_escape(title)}}}}} \\")
            lines.append(r"\midrule")
        for row in rows:
            if len(row) != n:
                raise ValueError(f"row {list(row)} has {len(row)} cells, the header has {n}")
            lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
