"""The run manifest (path, size, SHA-256 of every result file) and the comparison of two."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from otgap.manifest import (
    MANIFEST_NAME,
    compare,
    main,
    read_manifest,
    write_manifest,
)


def make_run(root, files):
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def test_manifest_lists_every_result_file_with_size_and_sha256(tmp_path):
    files = {
        "eos/a/history.csv": b"step,loss\n0,1.0\n",
        "eos/a/model.pt": bytes(range(256)) * 10,
        "tables/eos/summary.tex": b"\\begin{tabular}\n",
        "eos/a/run.json": b"{}",
    }
    make_run(tmp_path, files)
    make_run(tmp_path, {".checkpoints/eos/a/checkpoint.pt": b"x", "eos/.tmp.partial": b"y"})
    write_manifest(tmp_path)
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert lines[0] == "path\tsize\tsha256"
    expected = sorted(
        f"{rel}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}" for rel, data in files.items()
    )
    assert lines[1:] == expected  # hidden files and the manifest itself left out
    # writing again (now with the manifest present) gives the same file
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    write_manifest(tmp_path)
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before


def test_compare_sorts_files_into_identical_differing_and_missing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_run(a, {"x.csv": b"1", "y.npz": b"2", "run.json": b"t=1", "only_a.pt": b"3"})
    make_run(b, {"x.csv": b"1", "y.npz": b"2!", "run.json": b"t=2", "only_b.pt": b"4"})
    write_manifest(a)
    write_manifest(b)
    cmp = compare(read_manifest(a / MANIFEST_NAME), read_manifest(b / MANIFEST_NAME))
    assert cmp.identical == ["x.csv"]
    assert cmp.differ == ["y.npz"]
    assert cmp.differ_provenance == ["run.json"]
    assert cmp.only_a == ["only_a.pt"] and cmp.only_b == ["only_b.pt"]
    assert not cmp.same_results
    assert main(["compare", str(a / MANIFEST_NAME), str(b / MANIFEST_NAME)]) == 1
    assert main(["compare", str(a / MANIFEST_NAME), str(a / MANIFEST_NAME)]) == 0


def test_compare_command_line(tmp_path):
    make_run(tmp_path / "a", {"x.csv": b"1"})
    write_manifest(tmp_path / "a")
    (tmp_path / "bad.tsv").write_text("path\tsize\tsha256\nx.csv\tten\tabc\n")
    proc = subprocess.run(
        [sys.executable, "-m", "otgap.manifest", "compare",
         str(tmp_path / "a" / MANIFEST_NAME), str(tmp_path / "bad.tsv")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "bad.tsv', line 2" in proc.stderr


def test_quick_run_manifest_matches_the_files(quick_run):
    entries = read_manifest(quick_run / MANIFEST_NAME)
    written = (quick_run / MANIFEST_NAME).stat().st_mtime
    files = sorted(  # files made after the manifest (`make report`'s report.zip) are not in it
        p.relative_to(quick_run).as_posix()
        for p in quick_run.rglob("*")
        if p.is_file()
        and p.name != MANIFEST_NAME
        and p.stat().st_mtime <= written
        and not any(part.startswith(".") for part in p.relative_to(quick_run).parts)
    )
    assert sorted(entries) == files
    for rel in files[:: max(1, len(files) // 20)]:  # a sample: hashing everything is slow
        data = (quick_run / rel).read_bytes()
        assert entries[rel].size == len(data)
        assert entries[rel].sha256 == hashlib.sha256(data).hexdigest()
