"""Generic paper tables: one metric as a grid of mean +- std cells, best in bold, marks explained.

Built on ``otgap.tables.latex.booktabs_table``; a table file is a complete ``table`` float with
caption (ending in provenance) and label, so the paper's sources only ``\\input`` it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from otgap.tables.latex import booktabs_table, tex_escape


def table_float(tabular: str, caption: str, label: str, *, small: bool = True) -> str:
    """Wrap a tabular in a centred table float with caption and label."""
    size = "\\small\n" if small else ""
    return (
        "\\begin{table}[htbp]\n\\centering\n"
        f"{size}"
        f"\\caption{{{caption}}}\n\\label{{{label}}}\n"
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
        f"{tabular.rstrip()}\n}}\n"
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


def grid_table(
    cells: Mapping[tuple[str, str], str],
    rows: Sequence[str],
    columns: Sequence[str],
    *,
    row_title: str,
    column_titles: Mapping[str, str] | None = None,
    missing: str = "n/a",
) -> str:
    """A booktabs tabular from pre-formatted ``cells[(row, column)]``."""
    titles = column_titles or {}
    header = [tex_escape(row_title), *[tex_escape(titles.get(c, c)) for c in columns]]
    body = [[tex_escape(r), *[cells.get((r, c), missing) for c in columns]] for r in rows]
    return booktabs_table(header, [(None, body)])


def sectioned_table(
    header: Sequence[str], sections: Sequence[tuple[str | None, Sequence[Sequence[str]]]]
) -> str:
    return booktabs_table(header, sections)
