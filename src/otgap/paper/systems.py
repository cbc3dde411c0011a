"""Sections for the other source documents' systems (Landau network, BiostatisV6, ODE-solving networks).

Their stages are built by other parts of the workflow; the paper only needs their result tables
(CSV). A section is included when its tables exist in the run (or a rule of the workflow makes
them); each CSV becomes a table with every column, numbers to three significant figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from otgap.paper.macros import MacroSet
from otgap.paper.numbers import format_value
from otgap.paper.tables import table_float
from otgap.tables.latex import booktabs_table, tex_escape

SYSTEM_TITLES = {
    "landau": "Landau network and the Langevin optimizer",
    "biostatis": "The BiostatisV6 optimizer",
    "ode_solver": "Networks that solve a known ODE",
}
SYSTEM_MACRO = {"landau": "Landau", "biostatis": "Biostatis", "ode_solver": "OdeSolver"}
MAX_ROWS = 30
#: what each system's comparisons can and cannot show (docs/systems.md has the long form)
SYSTEM_SCOPE = {
    "landau": (
        "landau1 is Landau $\\to$ BatchNorm $\\to$ rrelu, an interpretation of the source's commented "
        "one-layer line and its 'with batch norm' captions; without the BatchNorm "
        "(landau1\\_nobn) it collapses to a single class. Rows changing only the optimizer "
        "(Langevin, SGD, Adam) or only the architecture and its loss (landau1 vs fc1 under "
        "Langevin) stand beside the combined change. Epochs to near-final accuracy and noise "
        "ratios are undefined for runs at chance. A quick run shorter than the inverse damping "
        "(in steps) never leaves the Langevin optimizer's transient. The source's MNIST claims "
        "concern networks of about a million parameters and say nothing about digits."
    ),
    "biostatis": (
        "At its authors' defaults BiostatisV6 steps like AdamW at its lr times the recorded gain "
        "h e (the 'effective step multiplier'); its other terms are orders of magnitude smaller. "
        "Same-nominal-lr rows therefore compare step sizes as much as optimizers; the lr-matched "
        "AdamW arm and the lr sweep compare at equal effective steps, and equivalence is claimed "
        "only within the margin stated before the run (two one-sided tests)."
    ),
}


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = format_value(value)
        return f"${text}$" if "times" in text else text
    return tex_escape(value)


def csv_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """Every column of ``frame`` (first MAX_ROWS rows) as a table float."""
    shown = frame.head(MAX_ROWS)
    header = [f"\\texttt{{{tex_escape(c)}}}" for c in shown.columns]
    rows = [[_cell(v) for v in rec] for rec in shown.itertuples(index=False, name=None)]
    if len(frame) > MAX_ROWS:
        caption = f"First {MAX_ROWS} of {len(frame)} rows. " + caption
    return table_float(
        booktabs_table(header, [(None, rows)], align="l" * len(header)), caption, label
    )


def system_section(name: str, csvs: Sequence[str | Path], provenance: Sequence[str]) -> str:
    """LaTeX for one system's section: a short text, its macros and one table per CSV."""
    title = SYSTEM_TITLES.get(name, name.replace("_", " "))
    part = SYSTEM_MACRO.get(name, "".join(ch for ch in name.title() if ch.isalpha()))
    ms = MacroSet(prefix=f"Sys{part}")
    frames = []
    for path in csvs:
        try:
            frames.append((Path(path), pd.read_csv(path)))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            frames.append((Path(path), None))
    ms.add("NTables", str(len(frames)), "result tables of this system")
    ms.add("NRows", str(sum(len(f) for _, f in frames if f is not None)), "rows over its tables")
    out = [
        ms.render(f"macros of system {name}"),
        f"\\section{{{tex_escape(title)}}}",
        f"\\label{{sec:system-{name}}}",
        f"The workflow's \\texttt{{{tex_escape(name)}}} stage wrote "
        f"\\Sys{part}NTables{{}} result table(s) with \\Sys{part}NRows{{}} rows in all; "
        "they are reproduced below as the stage wrote them.",
    ]
    if name in SYSTEM_SCOPE:
        out.append(SYSTEM_SCOPE[name])
    for k, ((path, frame), tail) in enumerate(zip(frames, provenance, strict=True)):
        label = f"tab:system-{name}-{k}"
        cap = f"\\texttt{{{tex_escape(path.name)}}} of the {tex_escape(name)} stage. {tail}"
        if frame is None:
            out.append(f"\\noindent\\emph{{{tex_escape(path.name)} could not be read.}}")
            continue
        out.append(csv_table(frame, cap, label))
    return "\n".join(out) + "\n"
