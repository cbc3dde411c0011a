"""Atomic outputs, clear input errors and the job harness of the workflow scripts."""

from types import SimpleNamespace

import numpy as np
import pytest

from otgap.io import OutputError, atomic_path, read_npz, write_json, write_npz
from otgap.jobs import job


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_npz_is_bitwise_reproducible(tmp_path):
    a = {"x": np.arange(5.0), "m": np.array([True, False])}
    write_npz(tmp_path / "a.npz", **a)
    write_npz(tmp_path / "b.npz", **a)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert np.array_equal(read_npz(tmp_path / "a.npz")["x"], a["x"])


def test_read_npz_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable npz"):
        read_npz(tmp_path / "junk.npz")
    write_npz(tmp_path / "ok.npz", a=np.zeros(2))
    with pytest.raises(KeyError, match="lacks the key"):
        read_npz(tmp_path / "ok.npz", required=("a", "b"))


def test_unwritable_destination(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"):
        write_json(blocker / "sub" / "x.json", {"a": 1})


def test_job_harness_logs_and_reraises(tmp_path, capsys):
    log = tmp_path / "logs" / "x.log"
    out = tmp_path / "res" / "x.json"
    smk = SimpleNamespace(log=[str(log)], output=[str(out)], threads=1, wildcards={}, rule="demo")
    with pytest.raises(ValueError):
        with job(smk) as say:
            say("working")
            raise ValueError("bad input file 'y.npz'")
    text = log.read_text()
    assert "working" in text and "Traceback" in text and "bad input file" in text
    assert "[demo] FAILED: ValueError: bad input file 'y.npz'" in capsys.readouterr().err
    assert not out.exists()


def test_check_writable_dir_creates_nothing(tmp_path):
    from otgap.io import check_writable_dir

    target = tmp_path / "results" / "paper"
    assert check_writable_dir(target) == target
    assert not (tmp_path / "results").exists()


def test_check_writable_dir_rejects_a_file_on_the_path(tmp_path):
    from otgap.io import OutputError, check_writable_dir

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        check_writable_dir(blocker / "results" / "quick")
