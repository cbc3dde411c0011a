"""The macros file: every number the paper's prose cites, as ``\\newcommand``s from the results.

Names are letters only (LaTeX control words), chosen by the generator that knows what a value is
(``\\FhnNodeRmseSparsest``). A value that cannot be computed (missing file or column) becomes
``n/a`` rather than an error, so the document builds at every stage of the project; the macro's
comment says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otgap.paper.numbers import MISSING

_NAME = re.compile(r"^[A-Za-z]+$")


@dataclass
class MacroSet:
    """An ordered set of macros with unique letter-only names."""

    prefix: str = ""
    macros: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, name: str, value: str | None, comment: str = "") -> str:
        """Define ``\\<prefix><name>`` as ``value`` (``n/a`` when None); returns the full name."""
        full = self.prefix + name
        if not _NAME.match(full):
            raise ValueError(f"macro name '{full}' must consist of letters only (LaTeX rule)")
        if full in self.macros:
            raise ValueError(f"macro '\\{full}' defined twice")
        self.macros[full] = (MISSING if value is None else str(value), comment)
        return full

    def value(self, name: str) -> str:
        return self.macros[name][0]

    def render(self, header: str = "") -> str:
        lines = [f"% {line}" for line in header.splitlines()] if header else []
        for name, (value, comment) in self.macros.items():
            note = f"  % {comment}" if comment else ""
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}{note}")
        return "\n".join(lines) + "\n"


def defined_macros(tex: str) -> set[str]:
    """Names defined with ``\\newcommand{\\name}`` in ``tex``."""
    return set(re.findall(r"\\(?:re)?newcommand\*?\{\\([A-Za-z]+)\}", tex))


def used_macros(tex: str) -> set[str]:
    """Control words used in ``tex`` (comments stripped)."""
    text = re.sub(r"(?<!\\)%.*", "", tex)
    return set(re.findall(r"\\([A-Za-z]+)", text))
