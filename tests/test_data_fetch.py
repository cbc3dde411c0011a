"""otgap.data.fetch: verified downloads, files moved aside (never deleted), clear network errors,
and the load-path checksum with its size/mtime cache. Served by a local HTTP server."""

from __future__ import annotations

import hashlib
import os

import pytest

from otgap.data import fetch
from otgap.data.fetch import (
    ChecksumError,
    DataUnavailableError,
    download,
    ensure_file,
    file_digests,
    move_aside,
    sidecar_path,
    verify_file,
)
from tests._http import Server, dead_url

PAYLOAD = bytes(range(256)) * 40 + b"tail"
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
USER_BYTES = b"the user's own file, not the official one"


@pytest.fixture
def server():
    with Server({"/f.bin": PAYLOAD, "/cut.bin": PAYLOAD}, truncate=("/cut.bin",)) as srv:
        yield srv


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_verifies_and_renames_into_place(tmp_path, server):
    dest = tmp_path / "d" / "f.bin"
    got = download(server.url + "/f.bin", dest, md5=MD5, sha256=SHA256, timeout=5)
    assert got == dest and dest.read_bytes() == PAYLOAD
    # no temporary file left behind; the digests are cached for the first load
    assert listing(dest.parent) == sorted(["f.bin", sidecar_path(dest).name])


def test_first_load_after_download_does_not_hash_again(tmp_path, server, monkeypatch):
    dest = tmp_path / "f.bin"
    download(server.url + "/f.bin", dest, md5=MD5, timeout=5)
    monkeypatch.setattr(fetch, "hash_file", lambda p: pytest.fail("hashed again"))
    assert verify_file(dest, md5=MD5, sha256=SHA256)["md5"] == MD5


def test_downloaded_file_has_ordinary_permissions(tmp_path, server):
    umask = os.umask(0o022)
    try:
        dest = download(server.url + "/f.bin", tmp_path / "f.bin", md5=MD5, timeout=5)
    finally:
        os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o644
    assert sidecar_path(dest).stat().st_mode & 0o777 == 0o644


def test_wrong_sha256_alone_is_caught(tmp_path, server):
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match="SHA256"):
        download(server.url + "/f.bin", dest, md5=MD5, sha256="0" * 64, timeout=5)
    assert not dest.exists()


def test_download_with_wrong_checksum_keeps_the_bytes_aside(tmp_path, server):
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError) as err:
        download(server.url + "/f.bin", dest, md5="1" * 32, timeout=5)
    msg = str(err.value)
    assert str(dest) in msg and str(tmp_path / "f.bin.bad") in msg
    assert MD5 in msg and "1" * 32 in msg and server.url + "/f.bin" in msg
    assert listing(tmp_path) == ["f.bin.bad"]
    assert (tmp_path / "f.bin.bad").read_bytes() == PAYLOAD


def test_users_bad_file_is_moved_aside_byte_identical_and_replaced(tmp_path, server):
    dest = tmp_path / "f.bin"
    dest.write_bytes(USER_BYTES)
    logged = []
    ensure_file(server.url + "/f.bin", dest, md5=MD5, timeout=5, log=logged.append)
    assert dest.read_bytes() == PAYLOAD
    assert (tmp_path / "f.bin.bad").read_bytes() == USER_BYTES
    assert any(str(tmp_path / "f.bin.bad") in line for line in logged)


def test_users_bad_file_offline_error_names_both_paths(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(USER_BYTES)
    url = dead_url("/f.bin")
    with pytest.raises(DataUnavailableError) as err:
        ensure_file(url, dest, md5=MD5, timeout=5, log=lambda m: None)
    msg = str(err.value)
    assert str(dest) in msg and str(tmp_path / "f.bin.bad") in msg and url in msg and MD5 in msg
    assert (tmp_path / "f.bin.bad").read_bytes() == USER_BYTES
    assert not dest.exists()


def test_users_bad_file_and_bad_download_error_names_all_paths(tmp_path, server):
    dest = tmp_path / "f.bin"
    dest.write_bytes(USER_BYTES)
    wrong = hashlib.md5(b"something else").hexdigest()
    with pytest.raises(ChecksumError) as err:
        ensure_file(server.url + "/f.bin", dest, md5=wrong, timeout=5, log=lambda m: None)
    msg = str(err.value)
    assert str(tmp_path / "f.bin.bad") in msg and str(tmp_path / "f.bin.bad.1") in msg
    assert (tmp_path / "f.bin.bad").read_bytes() == USER_BYTES  # the user's bytes
    assert (tmp_path / "f.bin.bad.1").read_bytes() == PAYLOAD  # what the server sent


def test_move_aside_never_overwrites(tmp_path):
    for content in (b"first", b"second", b"third"):
        (tmp_path / "x.npz").write_bytes(content)
        move_aside(tmp_path / "x.npz")
    assert (tmp_path / "x.npz.bad").read_bytes() == b"first"
    assert (tmp_path / "x.npz.bad.1").read_bytes() == b"second"
    assert (tmp_path / "x.npz.bad.2").read_bytes() == b"third"
    assert not (tmp_path / "x.npz").exists()


def test_verified_file_is_kept_without_network(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(PAYLOAD)
    mtime = dest.stat().st_mtime_ns
    assert ensure_file(dead_url(), dest, md5=MD5, timeout=5) == dest
    assert dest.read_bytes() == PAYLOAD and dest.stat().st_mtime_ns == mtime


def test_mirror_copy_is_verified_then_used(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "root" / "f.bin"
    dest.parent.mkdir()
    ensure_file(dead_url(), dest, md5=MD5, mirrors=[mirror], timeout=5, log=lambda m: None)
    assert dest.read_bytes() == PAYLOAD and (mirror / "f.bin").read_bytes() == PAYLOAD


def test_offline_message_names_url_destination_and_checksum(tmp_path):
    url = dead_url("/f.bin")
    dest = tmp_path / "f.bin"
    with pytest.raises(DataUnavailableError) as err:
        download(url, dest, md5=MD5, timeout=5)
    msg = str(err.value)
    assert url in msg and str(dest) in msg and MD5 in msg and "offline" in msg
    assert listing(tmp_path) == []


def test_http_error_status_is_named(tmp_path, server):
    with pytest.raises(DataUnavailableError, match="HTTP 404"):
        download(server.url + "/missing.bin", tmp_path / "m.bin", md5=MD5, timeout=5)
    assert listing(tmp_path) == []


def test_truncated_transfer_is_an_error_and_leaves_nothing(tmp_path, server):
    with pytest.raises(DataUnavailableError):
        download(server.url + "/cut.bin", tmp_path / "cut.bin", md5=MD5, timeout=5)
    assert listing(tmp_path) == []


def test_progress_is_reported_for_large_files(tmp_path, server, monkeypatch):
    monkeypatch.setattr(fetch, "PROGRESS_MIN_BYTES", 1)
    lines = []
    download(server.url + "/f.bin", tmp_path / "f.bin", md5=MD5, timeout=5, log=lines.append)
    assert lines and "100%" in lines[-1] and f"{len(PAYLOAD) / 1e6:.1f}" in lines[-1]


def test_a_checksum_is_required(tmp_path):
    with pytest.raises(ValueError, match="MD5 or SHA-256"):
        download("http://127.0.0.1:9/x", tmp_path / "x")
    with pytest.raises(ValueError, match="32 hex digits"):
        ensure_file("http://127.0.0.1:9/x", tmp_path / "x", md5="abc")


# ------------------------------------------------------------------ load path


def test_verify_file_checks_and_leaves_a_bad_file_alone(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(USER_BYTES)
    found = hashlib.md5(USER_BYTES).hexdigest()
    with pytest.raises(ChecksumError) as err:
        verify_file(path, md5=MD5, what="test file", hint="Do X.")
    msg = str(err.value)
    assert str(path) in msg and MD5 in msg and found in msg and msg.endswith("Do X.")
    assert path.read_bytes() == USER_BYTES and listing(tmp_path) == sorted(
        ["f.bin", sidecar_path(path).name]
    )
    with pytest.raises(DataUnavailableError, match="missing"):
        verify_file(tmp_path / "nope.bin", md5=MD5)


def test_digests_are_cached_by_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    calls = []
    real = fetch.hash_file
    monkeypatch.setattr(fetch, "hash_file", lambda p: calls.append(p) or real(p))

    assert verify_file(path, md5=MD5, sha256=SHA256) == {"md5": MD5, "sha256": SHA256}
    assert len(calls) == 1 and sidecar_path(path).is_file()
    verify_file(path, md5=MD5)
    assert len(calls) == 1  # served from the sidecar

    # Same size, other content and mtime: hashed again, and the mismatch is found.
    st = path.stat()
    path.write_bytes(bytes(len(PAYLOAD)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ChecksumError):
        verify_file(path, md5=MD5)
    assert len(calls) == 2

    # Other size, same mtime: hashed again.
    path.write_bytes(PAYLOAD + b"x")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert file_digests(path)["md5"] == hashlib.md5(PAYLOAD + b"x").hexdigest()
    assert len(calls) == 3


def test_cache_is_keyed_on_stat_not_trusted_blindly(tmp_path):
    """A sidecar whose size/mtime do not match the file is ignored (and rewritten)."""
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    sidecar_path(path).write_text('{"size": 1, "mtime_ns": 1, "md5": "x", "sha256": "y"}')
    assert file_digests(path) == {"md5": MD5, "sha256": SHA256}
    assert file_digests(path) == {"md5": MD5, "sha256": SHA256}
    sidecar_path(path).write_text("not json")
    assert file_digests(path) == {"md5": MD5, "sha256": SHA256}
    # A different file renamed into place with the same size and mtime: another inode.
    other = tmp_path / "other.bin"
    other.write_bytes(bytes(len(PAYLOAD)))
    st = path.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    assert file_digests(path)["md5"] == hashlib.md5(bytes(len(PAYLOAD))).hexdigest()


def test_read_only_folder_still_verifies(tmp_path):
    path = tmp_path / "ro" / "f.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    path.parent.chmod(0o555)
    try:
        assert verify_file(path, md5=MD5)["sha256"] == SHA256
    finally:
        path.parent.chmod(0o755)
