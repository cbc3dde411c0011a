"""MedMNIST download/cache/validation against a local HTTP server, and the offline digits set."""

from __future__ import annotations

import hashlib
import io
import socket
from pathlib import Path

import medmnist
import numpy as np
import pytest
import torch

from otgap.data.classification import load_dataset
from otgap.data.digits import load_digits
from otgap.data.medmnist import (
    ChecksumError,
    DataUnavailableError,
    download_medmnist,
    file_name,
    load_medmnist,
    load_npz,
    remote,
)
from tests._http import Server

COUNTS = {"train": 20, "val": 6, "test": 8}


def make_npz(shape=(28, 28, 3), n_classes=9, drop=None, seed=0) -> bytes:
    """A MedMNIST-format archive: uint8 images, (N, 1) labels, optionally missing one key."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in COUNTS.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, n_classes, size=(n, 1), dtype=np.uint8)
    if drop:
        del arrays[drop]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@pytest.fixture
def payload():
    data = make_npz()
    return data, hashlib.md5(data).hexdigest()


@pytest.fixture
def server(payload):
    srv = Server({"/pathmnist.npz": payload[0]})
    yield srv
    srv.stop()


@pytest.fixture
def dead_url():
    """A URL on a port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/pathmnist.npz"


@pytest.fixture(autouse=True)
def fake_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_remote_and_file_name_follow_medmnist_info():
    info = medmnist.INFO["pathmnist"]
    assert remote("pathmnist") == (info["url"], info["MD5"])
    assert remote("pathmnist", 64) == (info["url_64"], info["MD5_64"])
    assert file_name("pathmnist") == "pathmnist.npz"
    assert file_name("bloodmnist", 128) == "bloodmnist_128.npz"


def test_download_verifies_md5_and_loads(tmp_path, server, payload):
    root = tmp_path / "root"
    path = download_medmnist(
        "pathmnist", 28, root, url=server.url + "/pathmnist.npz", md5=payload[1], timeout=5
    )
    assert path == root / "pathmnist.npz"
    assert hashlib.md5(path.read_bytes()).hexdigest() == payload[1]
    # no temporary file left (only the digest cache beside the file)
    assert sorted(p.name for p in root.iterdir()) == [
        ".pathmnist.npz.digests.json",
        "pathmnist.npz",
    ]
    umask = int(Path("/proc/self/status").read_text().split("Umask:")[1].split()[0], 8)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by others, not mkstemp's 0600

    data = load_medmnist("pathmnist", root=root, md5=payload[1])
    with np.load(io.BytesIO(payload[0])) as ref:
        images = ref["train_images"]
        labels = ref["train_labels"]
    assert data.x_train.shape == (20, 3, 28, 28) and data.x_train.dtype == torch.float32
    assert data.x_val.shape == (6, 3, 28, 28) and data.x_test.shape == (8, 3, 28, 28)
    assert data.input_shape == (3, 28, 28) and data.n_classes == 9
    # Normalize(0.5, 0.5) of ToTensor's x/255, written out by hand for one pixel and all of them.
    assert data.x_train[3, 1, 4, 5].item() == pytest.approx((images[3, 4, 5, 1] / 255 - 0.5) / 0.5)
    expected = (images.transpose(0, 3, 1, 2).astype(np.float64) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(data.x_train.numpy(), expected, atol=1e-6)
    assert data.y_train.dtype == torch.int64 and data.y_train.shape == (20,)
    np.testing.assert_array_equal(data.y_train.numpy(), labels[:, 0])


def test_wrong_checksum_keeps_download_aside_and_names_both_digests(tmp_path, server, payload):
    root = tmp_path / "root"
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as err:
        download_medmnist(
            "pathmnist", 28, root, url=server.url + "/pathmnist.npz", md5=wrong, timeout=5
        )
    message = str(err.value)
    assert str(root / "pathmnist.npz") in message and str(root / "pathmnist.npz.bad") in message
    assert wrong in message and payload[1] in message
    assert sorted(p.name for p in root.iterdir()) == ["pathmnist.npz.bad"]
    assert (root / "pathmnist.npz.bad").read_bytes() == payload[0]


def test_cached_file_is_reused_without_network(tmp_path, server, payload):
    root = tmp_path / "root"
    url = server.url + "/pathmnist.npz"
    download_medmnist("pathmnist", 28, root, url=url, md5=payload[1], timeout=5)
    server.stop()
    n_requests = len(server.requests)
    path = download_medmnist("pathmnist", 28, root, url=url, md5=payload[1], timeout=5)
    assert path.read_bytes() == payload[0]
    assert len(server.requests) == n_requests == 1


def test_corrupt_cached_file_is_moved_aside_and_replaced(tmp_path, server, payload):
    root = tmp_path / "root"
    root.mkdir()
    (root / "pathmnist.npz").write_bytes(b"truncated")
    path = download_medmnist(
        "pathmnist", 28, root, url=server.url + "/pathmnist.npz", md5=payload[1], timeout=5
    )
    assert path.read_bytes() == payload[0]
    assert (root / "pathmnist.npz.bad").read_bytes() == b"truncated"


def test_users_file_offline_is_moved_aside_byte_identical_and_both_paths_named(
    tmp_path, payload, dead_url
):
    """The reported bug: a wrong file was deleted, then the user was told to put it back there."""
    root = tmp_path / "root"
    root.mkdir()
    user = make_npz(seed=5)  # a valid MedMNIST-format file, just not the expected one
    (root / "pathmnist.npz").write_bytes(user)
    with pytest.raises(DataUnavailableError) as err:
        download_medmnist("pathmnist", 28, root, url=dead_url, md5=payload[1], timeout=5)
    message = str(err.value)
    assert str(root / "pathmnist.npz") in message and str(root / "pathmnist.npz.bad") in message
    assert (root / "pathmnist.npz.bad").read_bytes() == user


# ------------------------------------------------- checksum policy on the load path


def place(root, body: bytes):
    root.mkdir(parents=True, exist_ok=True)
    (root / "pathmnist.npz").write_bytes(body)
    return root / "pathmnist.npz"


def test_load_checks_the_official_md5(tmp_path, payload):
    """A MedMNIST-format file with another MD5 (e.g. a public subset) does not load silently."""
    path = place(tmp_path, payload[0])
    official = medmnist.INFO["pathmnist"]["MD5"]
    with pytest.raises(ChecksumError) as err:
        load_medmnist("pathmnist", root=tmp_path)
    message = str(err.value)
    assert str(path) in message and official in message and payload[1] in message
    assert "data.medmnist_md5" in message and "eos_download" in message
    assert path.read_bytes() == payload[0]  # the load path never moves or deletes


def test_load_skip_policy_warns_and_records(tmp_path, payload, capsys):
    place(tmp_path, payload[0])
    data = load_medmnist("pathmnist", root=tmp_path, md5="skip")
    assert "WARNING" in capsys.readouterr().err
    assert data.source["md5_policy"] == "skip" and data.source["matches_official"] is False
    assert data.source["files"][0]["md5"] == payload[1]


def test_load_hex_policy_accepts_exactly_that_file(tmp_path, payload, capsys):
    place(tmp_path, payload[0])
    data = load_medmnist("pathmnist", root=tmp_path, md5=payload[1].upper())
    assert "WARNING" in capsys.readouterr().err
    assert data.source["md5_policy"] == "hex" and data.source["md5_expected"] == payload[1]
    with pytest.raises(ChecksumError):
        load_medmnist("pathmnist", root=tmp_path, md5="a" * 32)
    with pytest.raises(ValueError, match="data.medmnist_md5"):
        load_medmnist("pathmnist", root=tmp_path, md5="officia1")


def test_load_path_md5_is_cached(tmp_path, payload, monkeypatch):
    from otgap.data import fetch

    place(tmp_path, payload[0])
    calls = []
    real = fetch.hash_file
    monkeypatch.setattr(fetch, "hash_file", lambda p: calls.append(p) or real(p))
    load_medmnist("pathmnist", root=tmp_path, md5=payload[1])
    load_medmnist("pathmnist", root=tmp_path, md5=payload[1])
    assert len(calls) == 1


def test_dataset_provenance_has_md5_and_split_sizes(tmp_path, payload):
    from otgap.data.classification import dataset_provenance

    place(tmp_path, payload[0])
    data = load_dataset("pathmnist", root=tmp_path, medmnist_md5=payload[1])
    prov = dataset_provenance(data)
    assert prov["split_sizes"] == COUNTS and prov["n_classes"] == 9
    assert prov["input_shape"] == [3, 28, 28]
    (record,) = prov["source"]["files"]
    assert record["md5"] == payload[1] and record["size_bytes"] == len(payload[0])
    assert record["sha256"] == hashlib.sha256(payload[0]).hexdigest()
    assert record["official_md5"] == medmnist.INFO["pathmnist"]["MD5"]


def test_copy_in_medmnist_home_is_reused_offline(tmp_path, fake_home, payload, dead_url):
    (fake_home / ".medmnist").mkdir()
    (fake_home / ".medmnist" / "pathmnist.npz").write_bytes(payload[0])
    root = tmp_path / "root"
    path = download_medmnist("pathmnist", 28, root, url=dead_url, md5=payload[1], timeout=5)
    assert path == root / "pathmnist.npz" and path.read_bytes() == payload[0]


def test_bad_copy_in_medmnist_home_is_ignored_not_deleted(tmp_path, fake_home, payload, dead_url):
    mirror = fake_home / ".medmnist" / "pathmnist.npz"
    mirror.parent.mkdir()
    mirror.write_bytes(b"not the file")
    with pytest.raises(DataUnavailableError):
        download_medmnist(
            "pathmnist", 28, tmp_path / "root", url=dead_url, md5=payload[1], timeout=5
        )
    assert mirror.read_bytes() == b"not the file"


def test_offline_message_says_where_to_put_the_file(tmp_path, payload, dead_url):
    root = tmp_path / "root"
    with pytest.raises(DataUnavailableError) as err:
        download_medmnist("pathmnist", 28, root, url=dead_url, md5=payload[1], timeout=5)
    message = str(err.value)
    assert str(root / "pathmnist.npz") in message and dead_url in message
    assert not (root / "pathmnist.npz").exists()


def test_missing_file_without_download_names_url_and_path(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        load_medmnist("pathmnist", size=64, root=tmp_path)
    assert str(tmp_path / "pathmnist_64.npz") in str(err.value)
    assert medmnist.INFO["pathmnist"]["url_64"] in str(err.value)


def test_npz_missing_key_is_an_error(tmp_path):
    path = tmp_path / "pathmnist.npz"
    path.write_bytes(make_npz(drop="val_labels"))
    with pytest.raises(KeyError, match="val_labels"):
        load_npz(path, "pathmnist")


@pytest.mark.parametrize(
    ("flag", "shape", "size", "match"),
    [
        ("pathmnist", (27, 27, 3), 28, "expected \\(28, 28\\)"),
        ("pathmnist", (28, 28), 28, "\\(N, H, W, 3\\)"),
        ("bloodmnist", (28, 28, 3), 64, "expected \\(64, 64\\)"),
        ("pneumoniamnist", (28, 28, 3), 28, "\\(N, H, W\\)"),
    ],
)
def test_npz_with_wrong_shapes_is_an_error(tmp_path, flag, shape, size, match):
    path = tmp_path / "x.npz"
    path.write_bytes(make_npz(shape=shape, n_classes=2))
    with pytest.raises(ValueError, match=match):
        load_npz(path, flag, size)


def test_labels_out_of_range_are_an_error(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    path.write_bytes(make_npz(shape=(28, 28), n_classes=5))
    with pytest.raises(ValueError, match="labels must lie in"):
        load_npz(path, "pneumoniamnist")


def test_grayscale_flag_gets_a_channel_axis(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    path.write_bytes(make_npz(shape=(28, 28), n_classes=2))
    data = load_npz(path, "pneumoniamnist")
    assert data.input_shape == (1, 28, 28) and data.n_classes == 2


@pytest.mark.parametrize(
    ("flag", "size", "match"),
    [
        ("notamnist", 28, "unknown MedMNIST flag"),
        ("organmnist3d", 28, "3D"),
        ("pathmnist", 32, "image size"),
    ],
)
def test_bad_flag_or_size_fails_before_any_io(tmp_path, flag, size, match):
    with pytest.raises(ValueError, match=match):
        download_medmnist(flag, size, tmp_path / "root", url="http://127.0.0.1:9/x")
    with pytest.raises(ValueError, match=match):
        load_dataset(flag, size=size, root=tmp_path)


def test_multilabel_flag_is_rejected(tmp_path):
    path = tmp_path / "chestmnist.npz"
    path.write_bytes(make_npz(shape=(28, 28), n_classes=2))
    with pytest.raises(ValueError, match="multi-label"):
        load_npz(path, "chestmnist")


# ---------------------------------------------------------------- digits


def test_digits_split_and_standardisation():
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.preprocessing import StandardScaler

    data = load_digits()
    raw = sk_digits()
    assert data.x_train.shape == (1000, 1, 8, 8) and data.x_test.shape == (797, 1, 8, 8)
    assert data.n_classes == 10 and data.input_shape == (1, 8, 8)
    assert data.x_val is None
    np.testing.assert_array_equal(data.y_train.numpy(), raw.target[:1000])
    np.testing.assert_array_equal(data.y_test.numpy(), raw.target[1000:])
    scaler = StandardScaler().fit(raw.data[:1000])
    np.testing.assert_allclose(
        data.x_test.numpy().reshape(797, 64), scaler.transform(raw.data[1000:]), atol=1e-5
    )
    np.testing.assert_allclose(
        data.x_train.numpy().reshape(1000, 64), scaler.transform(raw.data[:1000]), atol=1e-5
    )


def test_digits_by_name_and_n_train():
    data = load_dataset("digits", n_train=500)
    assert len(data.x_train) == 500 and len(data.x_test) == 1297
    with pytest.raises(ValueError, match="n_train"):
        load_digits(n_train=1797)


def test_download_skip_policy_keeps_any_file_and_fetches_official_when_missing(
    tmp_path, payload, dead_url
):
    root = tmp_path / "root"
    place(root, b"any bytes at all")
    assert download_medmnist("pathmnist", 28, root, url=dead_url, md5="skip") == (
        root / "pathmnist.npz"
    )
    assert (root / "pathmnist.npz").read_bytes() == b"any bytes at all"
    with pytest.raises(DataUnavailableError) as err:
        download_medmnist("pathmnist", 28, tmp_path / "empty", url=dead_url, md5="skip")
    assert medmnist.INFO["pathmnist"]["MD5"] in str(err.value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("official", True), ("skip", True), ("0123456789abcdefABCDEF0123456789", True),
     ("officia1", False), ("abc", False), ("0" * 33, False)],
)  # fmt: skip
def test_config_schema_checks_medmnist_md5(value, ok):
    from pathlib import Path

    from otgap.config import ConfigError, load_config, validate_config

    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "config" / "config.yaml")
    schema = repo / "workflow" / "schemas" / "config.schema.yaml"
    assert cfg["data"]["medmnist_md5"] == "official"
    cfg["data"]["medmnist_md5"] = value
    if ok:
        validate_config(cfg, schema)
    else:
        with pytest.raises(ConfigError, match="medmnist_md5"):
            validate_config(cfg, schema)
    del cfg["data"]["medmnist_md5"]
    validate_config(cfg, schema)
    assert cfg["data"]["medmnist_md5"] == "official"
