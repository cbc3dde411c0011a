"""MNIST: IDX parsing against hand-made files, download/verify against a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from otgap.data import mnist
from otgap.data.classification import load_dataset
from otgap.data.dataset import dataset_provenance
from otgap.data.fetch import ChecksumError, DataUnavailableError
from otgap.data.mnist import (
    MNIST_FILES,
    download_mnist,
    load_mnist,
    mnist_paths,
    parse_idx,
    read_idx_gz,
)
from tests._http import Server, dead_url

N_TRAIN, N_TEST = 7, 3


def idx_images(images: np.ndarray) -> bytes:
    """The IDX layout written out by hand: magic 2051, n, rows, cols (big-endian), then pixels."""
    n, rows, cols = images.shape
    out = bytearray(struct.pack(">iiii", 2051, n, rows, cols))
    for i in range(n):
        for r in range(rows):
            for c in range(cols):
                out.append(int(images[i, r, c]))
    return bytes(out)


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">ii", 2049, len(labels)) + bytes(int(v) for v in labels)


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(3)
    return {
        "train_x": rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, size=N_TRAIN, dtype=np.uint8),
        "test_x": rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, size=N_TEST, dtype=np.uint8),
    }


@pytest.fixture(scope="module")
def files(arrays):
    """File name -> gzip bytes, for the four MNIST names."""
    raw = {
        "train-images-idx3-ubyte.gz": idx_images(arrays["train_x"]),
        "train-labels-idx1-ubyte.gz": idx_labels(arrays["train_y"]),
        "t10k-images-idx3-ubyte.gz": idx_images(arrays["test_x"]),
        "t10k-labels-idx1-ubyte.gz": idx_labels(arrays["test_y"]),
    }
    return {name: gzip.compress(body, mtime=0) for name, body in raw.items()}


@pytest.fixture(scope="module")
def md5s(files):
    return {name: hashlib.md5(body).hexdigest() for name, body in files.items()}


@pytest.fixture
def server(files):
    with Server({f"/mnist/{name}": body for name, body in files.items()}) as srv:
        yield srv


def test_official_table_matches_references_section_11():
    # Transcribed from docs/sources.md#mnist-and-cifar-10 (the torchvision mirror and its MD5s).
    assert mnist.MNIST_URL == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert mnist.MNIST_MD5 == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }


def test_parse_idx_against_hand_made_arrays(arrays):
    images = parse_idx(idx_images(arrays["train_x"]))
    assert images.shape == (N_TRAIN, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, arrays["train_x"])
    labels = parse_idx(idx_labels(arrays["train_y"]))
    assert labels.shape == (N_TRAIN,)
    np.testing.assert_array_equal(labels, arrays["train_y"])
    # A non-square one: rows and columns are not swapped.
    rect = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    np.testing.assert_array_equal(parse_idx(idx_images(rect)), rect)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x00\x00\x08", "too short"),
        (struct.pack(">ii", 2050, 1) + b"\x00", "magic number 2050"),
        (struct.pack(">iiii", 2051, 2, 2, 2) + bytes(7), "payload has 7"),
        (struct.pack(">ii", 2049, 3) + bytes(4), "payload has 4"),
        (struct.pack(">iii", 2051, 1, 1), "truncated"),
        (struct.pack(">ii", 2049, -1), "negative"),
    ],
)
def test_parse_idx_rejects_malformed_files(raw, match):
    with pytest.raises(ValueError, match=match):
        parse_idx(raw)


def test_read_idx_gz_rejects_non_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a readable gzip"):
        read_idx_gz(path)


def test_download_and_load(tmp_path, server, md5s, arrays):
    root = tmp_path / "mnist"
    paths = download_mnist(root, base_url=server.url + "/mnist/", md5=md5s, timeout=5)
    assert paths == mnist_paths(root)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(
        MNIST_FILES
    )
    data = load_mnist(root, md5=md5s)
    assert data.name == "mnist" and data.n_classes == 10 and data.x_val is None
    assert data.x_train.shape == (N_TRAIN, 1, 28, 28) and data.x_train.dtype == torch.float32
    assert data.x_test.shape == (N_TEST, 1, 28, 28)
    # x / 255 by hand for one pixel, then all of them.
    assert data.x_train[2, 0, 5, 17].item() == pytest.approx(arrays["train_x"][2, 5, 17] / 255)
    np.testing.assert_allclose(data.x_test[:, 0].numpy(), arrays["test_x"] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(data.y_train.numpy(), arrays["train_y"])
    np.testing.assert_array_equal(data.y_test.numpy(), arrays["test_y"])
    prov = dataset_provenance(data)
    assert prov["split_sizes"] == {"train": N_TRAIN, "test": N_TEST}
    assert {f["md5"] for f in prov["source"]["files"]} == set(md5s.values())


def test_load_with_download_fetches_only_once(tmp_path, server, md5s):
    root = tmp_path / "mnist"
    load_mnist(root, download=True, base_url=server.url + "/mnist/", md5=md5s)
    assert len(server.requests) == 4
    load_mnist(root, download=True, base_url=server.url + "/mnist/", md5=md5s)
    assert len(server.requests) == 4


def test_users_wrong_file_is_moved_aside_and_refetched(tmp_path, server, md5s, files):
    root = tmp_path / "mnist"
    root.mkdir()
    user = root / "train-labels-idx1-ubyte.gz"
    user.write_bytes(b"my own labels")
    download_mnist(root, base_url=server.url + "/mnist", md5=md5s, timeout=5)
    assert user.read_bytes() == files[user.name]
    assert (root / f"{user.name}.bad").read_bytes() == b"my own labels"


def test_wrong_checksum_download_error_names_both_paths(tmp_path, server, md5s):
    root = tmp_path / "mnist"
    root.mkdir()
    user = root / "t10k-images-idx3-ubyte.gz"
    user.write_bytes(b"user bytes")
    wrong = dict(md5s, **{user.name: "f" * 32})
    with pytest.raises(ChecksumError) as err:
        download_mnist(root, base_url=server.url + "/mnist/", md5=wrong, timeout=5)
    msg = str(err.value)
    assert str(user) in msg and str(root / f"{user.name}.bad") in msg
    assert (root / f"{user.name}.bad").read_bytes() == b"user bytes"  # byte-identical
    assert not user.exists()


def test_offline_message(tmp_path, md5s):
    url = dead_url("/mnist/")
    with pytest.raises(DataUnavailableError) as err:
        download_mnist(tmp_path / "mnist", base_url=url, md5=md5s, timeout=5)
    msg = str(err.value)
    assert url + "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in msg


def test_load_checks_the_md5_before_parsing(tmp_path, files, md5s):
    root = tmp_path / "mnist"
    root.mkdir()
    for name, body in files.items():
        (root / name).write_bytes(body)
    other = gzip.compress(idx_labels(np.zeros(N_TRAIN, dtype=np.uint8)), mtime=0)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(other)
    with pytest.raises(ChecksumError, match="mnist_download") as err:
        load_mnist(root, md5=md5s)
    assert str(root / "train-labels-idx1-ubyte.gz") in str(err.value)
    assert (root / "train-labels-idx1-ubyte.gz").read_bytes() == other  # left in place


def test_missing_files_name_the_rule(tmp_path):
    with pytest.raises(DataUnavailableError, match="mnist_download"):
        load_mnist(tmp_path)


def test_load_dataset_by_name(tmp_path, files, md5s, monkeypatch):
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    monkeypatch.setattr(mnist, "MNIST_MD5", md5s)
    data = load_dataset("mnist", root=tmp_path)
    assert data.name == "mnist" and data.input_shape == (1, 28, 28)
    assert len(data.x_train) == N_TRAIN


def test_download_rule_script(tmp_path, server, md5s, monkeypatch):
    """scripts/data_download.py as the rule mnist_download runs it (official URL -> local)."""
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    monkeypatch.setattr(mnist, "MNIST_URL", server.url + "/mnist/")
    monkeypatch.setattr(mnist, "MNIST_MD5", md5s)
    outputs = [str(tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz")]  # one per job
    smk = SimpleNamespace(
        rule="mnist_download",
        threads=1,
        log=[str(tmp_path / "download.log")],
        wildcards={},
        output=outputs,
        params=SimpleNamespace(dataset="mnist", timeout=5),
    )
    script = Path(__file__).resolve().parents[1] / "scripts" / "data_download.py"
    runpy.run_path(str(script), init_globals={"snakemake": smk})
    assert all(Path(p).is_file() for p in outputs)
    assert "ready" in (tmp_path / "download.log").read_text()
