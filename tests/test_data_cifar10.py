"""CIFAR-10: archives made here (Python-2-style pickles as in the official file), served locally;
checksum before unpickling; a restricted unpickler that refuses anything but plain data."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import pickletools
import tarfile

import numpy as np
import pytest
import torch

from otgap.data import cifar10
from otgap.data.cifar10 import (
    CIFAR10_ARCHIVE,
    download_cifar10,
    load_cifar10,
    restricted_loads,
)
from otgap.data.classification import load_dataset
from otgap.data.dataset import dataset_provenance
from otgap.data.fetch import ChecksumError, DataUnavailableError
from tests._http import Server, dead_url

PER_BATCH = 4
NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def py2_style(obj) -> bytes:
    """Pickle ``obj`` as the official files are: protocol 2, Python 2 strings for bytes, and
    NumPy 1.x's module name ``numpy.core.multiarray``.

    Pickled at protocol 3 by this Python, then each BINBYTES/BINUNICODE/SHORT_BINBYTES opcode is
    swapped for BINSTRING/SHORT_BINSTRING (same argument layout: every string becomes a Python 2
    ``str``, read back as bytes) and the header says protocol 2.
    """
    raw = bytearray(pickle.dumps(obj, protocol=3))
    for op, _, pos in pickletools.genops(bytes(raw)):
        if op.name == "SHORT_BINBYTES":
            raw[pos] = ord("U")
        elif op.name in ("BINBYTES", "BINUNICODE"):
            raw[pos] = ord("T")
    assert raw[:2] == b"\x80\x03"
    raw[1] = 2
    return bytes(raw).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_batches(seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: {
            b"batch_label": f"{name} of 5".encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, size=PER_BATCH)],
            b"data": rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(PER_BATCH)],
        }
        for name in NAMES
    }


def make_archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def batch_members(batches, dump=py2_style):
    members = {f"cifar-10-batches-py/{n}": dump(b) for n, b in batches.items()}
    members["cifar-10-batches-py/batches.meta"] = dump({b"label_names": [b"airplane"]})
    return members


@pytest.fixture(scope="module")
def batches():
    return make_batches()


@pytest.fixture(scope="module")
def archive(batches):
    body = make_archive(batch_members(batches))
    return body, hashlib.md5(body).hexdigest()


@pytest.fixture
def server(archive):
    with Server({"/cifar-10-python.tar.gz": archive[0]}) as srv:
        yield srv


def place(root, body):
    root.mkdir(parents=True, exist_ok=True)
    (root / CIFAR10_ARCHIVE).write_bytes(body)
    return hashlib.md5(body).hexdigest()


def test_py2_style_pickle_is_read_with_bytes_keys(batches):
    raw = py2_style(batches["data_batch_1"])
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw and raw[:2] == b"\x80\x02"
    ops = {op.name for op, _, _ in pickletools.genops(raw)}
    assert "SHORT_BINSTRING" in ops and "BINSTRING" in ops
    assert not ops & {"BINBYTES", "SHORT_BINBYTES", "BINUNICODE"}
    got = restricted_loads(raw)
    np.testing.assert_array_equal(got[b"data"], batches["data_batch_1"][b"data"])
    assert got[b"labels"] == batches["data_batch_1"][b"labels"]


def test_download_and_load(tmp_path, server, archive, batches):
    root = tmp_path / "cifar10"
    url = server.url + "/cifar-10-python.tar.gz"
    path = download_cifar10(root, url=url, md5=archive[1], timeout=5)
    assert path == root / CIFAR10_ARCHIVE and path.read_bytes() == archive[0]
    data = load_cifar10(root, md5=archive[1])
    assert data.name == "cifar10" and data.n_classes == 10 and data.x_val is None
    assert data.x_train.shape == (5 * PER_BATCH, 3, 32, 32) and data.x_train.dtype == torch.float32
    assert data.x_test.shape == (PER_BATCH, 3, 32, 32)
    # Channel-major rows: value (c, h, w) of image i sits at column c*1024 + h*32 + w.
    for split, i, name, j in (("train", 6, "data_batch_2", 2), ("test", 3, "test_batch", 3)):
        row = batches[name][b"data"][j]
        x = getattr(data, f"x_{split}")
        for c, h, w in ((0, 0, 0), (1, 5, 31), (2, 31, 7), (2, 17, 20)):
            assert x[i, c, h, w].item() == pytest.approx(row[c * 1024 + h * 32 + w] / 255)
    train_y = sum((batches[f"data_batch_{k}"][b"labels"] for k in range(1, 6)), [])
    assert data.y_train.tolist() == train_y
    assert data.y_test.tolist() == batches["test_batch"][b"labels"]
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    prov = dataset_provenance(data)
    assert prov["split_sizes"] == {"train": 5 * PER_BATCH, "test": PER_BATCH}
    assert prov["source"]["files"][0]["md5"] == archive[1]


def test_users_wrong_file_is_moved_aside_byte_identical(tmp_path, server, archive):
    root = tmp_path / "cifar10"
    place(root, b"half a download")
    download_cifar10(root, url=server.url + "/cifar-10-python.tar.gz", md5=archive[1], timeout=5)
    assert (root / CIFAR10_ARCHIVE).read_bytes() == archive[0]
    assert (root / f"{CIFAR10_ARCHIVE}.bad").read_bytes() == b"half a download"


def test_wrong_checksum_and_offline_name_both_paths(tmp_path, archive):
    root = tmp_path / "cifar10"
    place(root, b"user file")
    url = dead_url("/cifar-10-python.tar.gz")
    with pytest.raises(DataUnavailableError) as err:
        download_cifar10(root, url=url, md5=archive[1], timeout=5)
    msg = str(err.value)
    assert url in msg and str(root / CIFAR10_ARCHIVE) in msg
    assert str(root / f"{CIFAR10_ARCHIVE}.bad") in msg
    assert (root / f"{CIFAR10_ARCHIVE}.bad").read_bytes() == b"user file"


def test_official_values_match_references_section_11():
    assert cifar10.CIFAR10_URL == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert cifar10.CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"


class Evil:
    """Unpickling this would create a directory (standing in for arbitrary code)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_pickle_is_refused_even_with_a_matching_checksum(tmp_path, batches):
    marker = tmp_path / "pwned"
    evil = dict(batches)
    evil["data_batch_3"] = {b"data": Evil(str(marker)), b"labels": []}
    members = batch_members(evil, dump=lambda b: pickle.dumps(b, protocol=3))
    md5 = place(tmp_path / "cifar10", make_archive(members))
    with pytest.raises(ValueError, match="refusing to load global 'posix.mkdir'|'os.mkdir'"):
        load_cifar10(tmp_path / "cifar10", md5=md5)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({b"data": __import__("collections").OrderedDict(), b"labels": []}, 2),
        pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, 5),  # _frombuffer
        b"cbuiltins\neval\n(V1+1\ntR.",
    ],
)
def test_restricted_unpickler_allows_nothing_else(payload):
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(payload)


def test_checksum_is_checked_before_anything_is_unpickled(tmp_path, batches):
    marker = tmp_path / "pwned"
    evil = dict(batches)
    evil["test_batch"] = {b"data": Evil(str(marker)), b"labels": []}
    members = batch_members(evil, dump=lambda b: pickle.dumps(b, protocol=3))
    place(tmp_path / "cifar10", make_archive(members))
    with pytest.raises(ChecksumError, match="cifar10_download"):
        load_cifar10(tmp_path / "cifar10")  # the official MD5: this archive is not it
    assert not marker.exists()


def test_nothing_is_extracted_even_with_hostile_member_names(tmp_path, batches):
    members = batch_members(batches)
    members["../../escaped.txt"] = b"outside"
    members["/abs_escaped.txt"] = b"outside"
    root = tmp_path / "a" / "b" / "cifar10"
    md5 = place(root, make_archive(members))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    load_cifar10(root, md5=md5)
    after = sorted(str(p) for p in tmp_path.rglob("*") if not p.name.endswith(".digests.json"))
    assert after == before


def test_missing_member_and_bad_batch_are_clear_errors(tmp_path, batches):
    members = batch_members(batches)
    del members["cifar-10-batches-py/data_batch_4"]
    md5 = place(tmp_path / "c1", make_archive(members))
    with pytest.raises(ValueError, match="no member 'cifar-10-batches-py/data_batch_4'"):
        load_cifar10(tmp_path / "c1", md5=md5)

    bad = dict(batches)
    bad["data_batch_1"] = {**batches["data_batch_1"], b"labels": [0, 1]}
    md5 = place(tmp_path / "c2", make_archive(batch_members(bad)))
    with pytest.raises(ValueError, match="4 images but 2 labels"):
        load_cifar10(tmp_path / "c2", md5=md5)


def test_missing_archive_names_the_rule(tmp_path):
    with pytest.raises(DataUnavailableError, match="cifar10_download"):
        load_cifar10(tmp_path)


def test_load_dataset_by_name(tmp_path, archive, monkeypatch):
    place(tmp_path, archive[0])
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", archive[1])
    data = load_dataset("cifar10", root=tmp_path)
    assert data.name == "cifar10" and data.input_shape == (3, 32, 32)
    assert data.source["md5_policy"] == "official"


def test_download_rule_script(tmp_path, server, archive, monkeypatch):
    """scripts/data_download.py as the rule cifar10_download runs it (official URL -> local)."""
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    monkeypatch.setattr(cifar10, "CIFAR10_URL", server.url + "/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", archive[1])
    out = tmp_path / "data" / "cifar10" / CIFAR10_ARCHIVE
    smk = SimpleNamespace(
        rule="cifar10_download",
        threads=1,
        log=[str(tmp_path / "download.log")],
        wildcards={},
        output=[str(out)],
        params=SimpleNamespace(dataset="cifar10", timeout=5),
    )
    script = Path(__file__).resolve().parents[1] / "scripts" / "data_download.py"
    runpy.run_path(str(script), init_globals={"snakemake": smk})
    assert out.read_bytes() == archive[0]
