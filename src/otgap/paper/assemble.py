"""The build folder the paper compiles in: the sources under their paths below ``paper/``, the
generated parts under ``generated/``, and ``generated/systems.tex`` that inputs the sections of
the other systems present in the run. The folder is emptied first, so nothing stale is read."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from otgap.io import ensure_writable_dir, write_text


def assemble_build_dir(
    build_dir: str | Path,
    *,
    sources: Sequence[str | Path],
    generated: Sequence[str | Path],
    systems: Sequence[str],
    source_root: str = "paper",
) -> Path:
    """Fill ``build_dir`` (a folder the rule owns: its content is replaced) and return it."""
    build = Path(build_dir)
    if build.exists():
        shutil.rmtree(build)
    ensure_writable_dir(build / "generated")
    for src in map(Path, sources):
        parts = src.parts
        if source_root in parts:  # the last 'paper' component: the repo may sit in a 'paper' folder
            cut = len(parts) - parts[::-1].index(source_root)
            rel = Path(*parts[cut:])
        else:
            rel = Path(src.name)
        ensure_writable_dir((build / rel).parent)
        shutil.copyfile(src, build / rel)
    for gen in map(Path, generated):
        shutil.copyfile(gen, build / "generated" / gen.name)
    lines = ["% sections of the other systems whose results exist in this run"]
    lines += [f"\\input{{generated/system_{name}}}" for name in systems]
    write_text(build / "generated" / "systems.tex", "\n".join(lines) + "\n")
    return build
