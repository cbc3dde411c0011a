"""Generic paper tables: one metric as a grid of mean +- std cells, best in bold, marks explained.

Built on ``otgap.tables.latex.booktabs_table``; a table file is a complete ``table`` float with
caption (ending in provenance) and label, so the paper's sources only ``\\input`` it.
"""

from __future__ import annotations

from collections.abc import Sequence

from otgap.tables.latex import booktabs_table


def table_float(tabular: str, caption: str, label: str, *, small: bool = True) -> str:
    """Wrap a tabular in a centred table float with caption and label.

    The tabular is shrunk (never enlarged) to fit the line width and 75% of the text height, so a
    table that grows with the configured models and metrics never runs off the page.
    """
    size = "\\small\n" if small else ""
    return (
        "\\begin{table}[htbp]\n\\centering\n"
        f"{size}"
        f"\\caption{{{caption}}}\n\\label{{{label}}}\n"
        "\\setbox0=\\hbox{%\n"
        f"{tabular.rstrip()}\n}}%\n"
        "\\ifdim\\dimexpr\\ht0+\\dp0\\relax>0.75\\textheight"
        "\\setbox0=\\hbox{\\resizebox*{!}{0.75\\textheight}{\\copy0}}\\fi\n"
        "\\ifdim\\wd0>\\linewidth\\setbox0=\\hbox{\\resizebox{\\linewidth}{!}{\\copy0}}\\fi\n"
        "\\box0\n"
        "\\end{table}\n"
    )


def figure_float(path: str, caption: str, label: str, width: str = "\\linewidth") -> str:
    """A figure float including a vector PDF ``path`` (relative to the build directory)."""
    return (
        "\\begin{figure}[htbp]\n\\centering\n"
        f"\\includegraphics[width={width}]{{{path}}}\n"
        f"\\caption{{{caption}}}\n\\label{{{label}}}\n"
        "\\end{figure}\n"
    )


def sectioned_table(
    header: Sequence[str], sections: Sequence[tuple[str | None, Sequence[Sequence[str]]]]
) -> str:
    return booktabs_table(header, sections)


def longtable_head(colspec: str, caption: str, label: str, header: str) -> list[str]:
    """The opening lines of a small-print longtable that repeats ``header`` on every page (the
    caller appends the rows, then ``\\end{longtable}`` and the closing brace)."""
    return [
        "{\\scriptsize",
        f"\\begin{{longtable}}{{{colspec}}}",
        f"\\caption{{{caption}}}\\label{{{label}}}\\\\",
        "\\toprule",
        header,
        "\\midrule",
        "\\endfirsthead",
        "\\toprule",
        header,
        "\\midrule",
        "\\endhead",
        "\\bottomrule",
        "\\endfoot",
    ]
