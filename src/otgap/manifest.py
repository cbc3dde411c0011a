"""A run's manifest: path, size and SHA-256 of every result file, and a comparison of two of them.

``results/<run>/manifest.tsv`` is written by the last rule of the workflow, so two machines' runs
(or a run before and after a change) can be compared file by file::

    python -m otgap.manifest compare results/quick/manifest.tsv other/results/quick/manifest.tsv

The manifest lists every file under the run's folder except hidden ones (the undeclared
``.checkpoints/`` of interrupted jobs, temporary files of writers) and the manifest itself.
Provenance sidecars (``*.json``) record times and host names, so they differ between any two
runs; ``compare`` reports them apart from the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otgap.io import write_text

MANIFEST_NAME = "manifest.tsv"
HEADER = ("path", "size", "sha256")
# Files whose content records where and when they were made, not only what: expected to differ.
PROVENANCE_SUFFIXES = (".json", ".log")


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def result_files(root: str | os.PathLike) -> list[Path]:
    """Files under ``root`` (relative paths, sorted), skipping hidden files and folders and the
    manifest itself."""
    base = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(base)
            if name.startswith(".") or rel == Path(MANIFEST_NAME):
                continue
            out.append(rel)
    return sorted(out, key=lambda p: p.as_posix())


def build_manifest(root: str | os.PathLike) -> list[Entry]:
    base = Path(root)
    return [
        Entry(rel.as_posix(), (base / rel).stat().st_size, sha256_file(base / rel))
        for rel in result_files(base)
    ]


def format_manifest(entries: Iterable[Entry]) -> str:
    lines = ["\t".join(HEADER)]
    for e in entries:
        if "\t" in e.path or "\n" in e.path:
            raise ValueError(f"manifest: file name {e.path!r} holds a tab or a newline")
        lines.append(f"{e.path}\t{e.size}\t{e.sha256}")
    return "\n".join(lines) + "\n"


def write_manifest(root: str | os.PathLike, path: str | os.PathLike | None = None) -> list[Entry]:
    """Hash every result file under ``root`` and write the manifest (default ``root``/manifest.tsv)."""
    entries = build_manifest(root)
    write_text(path or Path(root) / MANIFEST_NAME, format_manifest(entries))
    return entries


def read_manifest(path: str | os.PathLike) -> dict[str, Entry]:
    """Parse a manifest; a malformed line is an error naming the file and the line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"manifest '{p}' does not exist")
    lines = p.read_text().splitlines()
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        raise ValueError(f"manifest '{p}', line 1: expected the header {' '.join(HEADER)!r}")
    out = {}
    for i, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
            raise ValueError(f"manifest '{p}', line {i}: expected path, size, sha256: {line!r}")
        out[parts[0]] = Entry(parts[0], int(parts[1]), parts[2])
    return out


@dataclass
class Comparison:
    identical: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    differ_provenance: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    @property
    def same_results(self) -> bool:
        """True when every file but the provenance records is present on both sides and equal."""
        return not (self.differ or self.only_a or self.only_b)


def compare(a: Mapping[str, Entry], b: Mapping[str, Entry]) -> Comparison:
    out = Comparison()
    for path in sorted(set(a) | set(b)):
        if path not in b:
            out.only_a.append(path)
        elif path not in a:
            out.only_b.append(path)
        elif a[path].sha256 == b[path].sha256:
            out.identical.append(path)
        elif path.endswith(PROVENANCE_SUFFIXES):
            out.differ_provenance.append(path)
        else:
            out.differ.append(path)
    return out


def report(cmp: Comparison, name_a: str, name_b: str) -> str:
    lines = [
        f"identical: {len(cmp.identical)} files",
        f"differ: {len(cmp.differ)} files",
        f"differ, provenance records only (times, hosts): {len(cmp.differ_provenance)} files",
        f"only in {name_a}: {len(cmp.only_a)} files",
        f"only in {name_b}: {len(cmp.only_b)} files",
    ]
    for title, paths in (
        ("differ", cmp.differ),
        (f"only in {name_a}", cmp.only_a),
        (f"only in {name_b}", cmp.only_b),
    ):
        lines += [f"{title}: {p}" for p in paths]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m otgap.manifest",
        description="Write or compare run manifests (path, size, SHA-256 of every result file).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="hash every file under a run folder into its manifest.tsv")
    w.add_argument("root", help="run folder, e.g. results/quick")
    c = sub.add_parser("compare", help="compare two manifests; exit status 1 if results differ")
    c.add_argument("a")
    c.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "write":
        # bad input (no such folder, unreadable files): one message naming it, exit status 2
        if not Path(args.root).is_dir():
            print(
                f"error: run folder '{args.root}' does not exist or is not a folder",
                file=sys.stderr,
            )
            return 2
        try:
            entries = write_manifest(args.root)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{len(entries)} files -> {Path(args.root) / MANIFEST_NAME}")
        return 0
    try:
        cmp = compare(read_manifest(args.a), read_manifest(args.b))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(cmp, args.a, args.b))
    return 0 if cmp.same_results else 1


if __name__ == "__main__":  # pragma: no cover - exercised through main() in tests
    sys.exit(main())
