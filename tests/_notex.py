"""A PATH on which the TeX programs are missing and everything else is found: a folder of links to
each PATH entry's programs except TeX's, one folder per entry, in PATH order.

    PATH=$(python tests/_notex.py /tmp/notex) pytest ...   # .ci/run: the no-TeX step

Tests import ``path_without_tex`` to run Snakemake as on a machine without TeX.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# the paper build's programs (otgap.paper.build.TEX_PROGRAMS) and the other TeX front ends
HIDDEN = frozenset(
    {"latexmk", "pdflatex", "bibtex", "lualatex", "xelatex", "latex", "tex", "pdftex"}
)


def path_without_tex(root: str | Path, path: str | None = None) -> str:
    """Build the shadow folders under ``root`` and return the PATH string that lists them."""
    root = Path(root)
    entries = [
        p for p in (os.environ.get("PATH", "") if path is None else path).split(os.pathsep) if p
    ]
    shadows = []
    for i, entry in enumerate(entries):
        shadow = root / f"{i:02d}"
        shadow.mkdir(parents=True, exist_ok=True)
        src = Path(entry)
        if src.is_dir():
            for item in src.iterdir():
                link = shadow / item.name
                if item.name in HIDDEN or link.is_symlink() or link.exists():
                    continue
                link.symlink_to(item)
        shadows.append(str(shadow))
    return os.pathsep.join(shadows)


if __name__ == "__main__":
    print(path_without_tex(sys.argv[1]))
