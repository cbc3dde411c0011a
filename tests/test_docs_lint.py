"""Documentation lint: the README stays a manual, the repository cites only what it contains.

A user who clones the repository has only its files: no issue tracker, no build machine's paths, no
notes kept beside the checkout. These checks read the files git tracks (plus new files git does not
ignore) and fail with the file and line of every offence.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()
README_MAX_LINES = 260

# "#15" (not "&#15;", not a hex colour such as "#000000" inside code) and "issue 22" / "issues 9"
ISSUE_HASH = re.compile(r"(?<![\w&#/])#\d+\b(?![0-9a-fA-F])")
ISSUE_WORD = re.compile(r"\bissues? #?\d+\b", re.IGNORECASE)
ABSOLUTE = re.compile(r"(?<![\w.~])/(?:work|root|home)/")
OUTSIDE = re.compile(r"REFERENCES\.md|\.\./shared\b")
# the source documents are named by what they are; "seed" means a random seed in this repository
SOURCE_NUMBER = re.compile(r"\bseeds? 00[0-4]\b|\bseeds 001/002\b", re.IGNORECASE)
TEXT_SUFFIXES = {
    ".py", ".smk", ".yaml", ".yml", ".md", ".rst", ".tex", ".bib", ".cff", ".toml", ".txt",
    ".cfg", ".sh", ".json", ".tsv", ".csv", "",
}  # fmt: skip
CITING_ROOTS = ("src/", "tests/", "config/", "workflow/", "scripts/", "benchmarks/", "profiles/",
                "docs/", "paper/")  # fmt: skip


def repo_files() -> list[str]:
    """Tracked files and untracked ones git does not ignore (new files before their commit)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}); the lint reads git's file list")
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def text_files() -> list[str]:
    files = []
    for f in repo_files():
        path = REPO / f
        if path.suffix not in TEXT_SUFFIXES or f == THIS or ".egg-info/" in f:
            continue
        if path.stat().st_size > 2_000_000:
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(f)
    return files


def offences(files: list[str], *patterns: re.Pattern[str]) -> list[str]:
    found = []
    for f in files:
        for n, line in enumerate((REPO / f).read_text(encoding="utf-8").splitlines(), 1):
            for pattern in patterns:
                m = pattern.search(line)
                if m:
                    found.append(f"{f}:{n}: {m.group(0)!r} in {line.strip()[:100]!r}")
    return found


def docs_files() -> list[str]:
    return [
        f for f in repo_files() if f == "README.md" or (f.startswith("docs/") and f.endswith(".md"))
    ]


def test_readme_is_a_manual_of_bounded_length():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to docs/"
    )


def test_readme_and_docs_name_no_issue_numbers():
    found = offences(docs_files(), ISSUE_HASH, ISSUE_WORD)
    assert not found, "issue numbers a reader cannot look up:\n" + "\n".join(found)


def test_code_comments_name_no_issue_numbers():
    files = [f for f in text_files() if f.startswith(CITING_ROOTS)]
    found = offences(files, ISSUE_WORD)
    assert not found, "issue numbers a reader cannot look up:\n" + "\n".join(found)


def test_no_absolute_paths_in_tracked_text():
    found = offences(text_files(), ABSOLUTE)
    assert not found, "absolute paths of a build machine:\n" + "\n".join(found)


def test_no_reference_to_files_outside_the_repository():
    files = [f for f in text_files() if f.startswith(CITING_ROOTS) or f == "README.md"]
    found = offences(files, OUTSIDE)
    assert not found, (
        "references to files outside the repository (cite docs/sources.md or the primary source):\n"
        + "\n".join(found)
    )


def test_source_documents_are_named_not_numbered():
    files = [f for f in text_files() if f.startswith(CITING_ROOTS) or f == "README.md"]
    found = offences(files, SOURCE_NUMBER)
    assert not found, (
        "name the source documents by what they are (the Landau network, the Langevin optimizer, "
        "BiostatisV6, the ODE-solving networks):\n" + "\n".join(found)
    )


def test_docs_links_resolve():
    """Relative links in README.md and docs/*.md point at files that exist."""
    link = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
    missing = []
    for f in docs_files() + ["config/README.md"]:
        path = REPO / f
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in link.finditer(line):
                target = m.group(1)
                if "://" in target or target.startswith("mailto:"):
                    continue
                if not (path.parent / target).exists():
                    missing.append(f"{f}:{n}: {target}")
    assert not missing, "links to files that do not exist:\n" + "\n".join(missing)


def test_sources_anchors_cited_in_code_exist():
    """Every ``docs/sources.md#anchor`` the code cites is a heading of docs/sources.md."""
    sources = (REPO / "docs" / "sources.md").read_text(encoding="utf-8")
    anchors = set()
    for line in sources.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    cite = re.compile(r"sources\.md#([\w\-]+)")
    bad = []
    for f in text_files():
        for n, line in enumerate((REPO / f).read_text(encoding="utf-8").splitlines(), 1):
            for m in cite.finditer(line):
                if m.group(1) not in anchors:
                    bad.append(f"{f}:{n}: #{m.group(1)}")
    assert not bad, "citations of sections docs/sources.md does not have:\n" + "\n".join(bad)


def test_licence_file_matches_the_declared_licence():
    licence = REPO / "LICENSE"
    assert licence.is_file(), "LICENSE is missing"
    text = licence.read_text(encoding="utf-8")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    cff = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    declared = re.search(r'^license\s*=\s*"([^"]+)"', pyproject, re.MULTILINE)
    assert declared and declared.group(1) == "MIT"
    assert re.search(r"^license:\s*MIT\s*$", cff, re.MULTILINE)
    assert text.startswith("MIT License") and "Permission is hereby granted" in text
