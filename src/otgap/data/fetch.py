"""Download, verify and cache data files; the one place every data set's downloader goes through.

Rules kept for every file (MedMNIST, MNIST, CIFAR-10, ...):

- A download streams into a temporary file beside the destination, its MD5 (and SHA-256 when one
  is given) is checked, and only then is it renamed into place: a half-written or wrong file never
  appears under the destination's name.
- A user's file is never deleted. A file at the destination that fails verification is moved aside
  to ``<name>.bad`` (``<name>.bad.1``, ``<name>.bad.2``, ... if that exists) and every later message
  says where it went. A downloaded file that fails verification is kept the same way, so the user
  can see what the server sent.
- Network errors (offline, refused, timeout, HTTP status) raise :class:`DataUnavailableError`
  naming the URL, the destination and the checksum a hand-placed file must have.
- Loading checks the checksum too (:func:`verify_file`). Digests are cached in a small JSON sidecar
  ``.<name>.digests.json`` keyed by the file's size, modification time and inode, so a 200 MB file
  is hashed once, not in every job; a changed or replaced file is hashed again.

Plain ``urllib`` is used (no pooch/torchvision): the behaviour above, the socket timeout and the
wording of the errors are what matter here, and a wrapper would have to override all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

_CHUNK = 1 << 20
_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)
_ALGOS = ("md5", "sha256")
PROGRESS_MIN_BYTES = 8 << 20  # report progress only for downloads at least this large


class ChecksumError(RuntimeError):
    """A downloaded, cached or hand-placed file does not have the expected digest."""


class DataUnavailableError(RuntimeError):
    """The file is neither present nor downloadable."""


def _log(msg: str) -> None:
    print(f"[fetch] {msg}", file=sys.stderr, flush=True)


def _expected(md5: str | None, sha256: str | None) -> dict[str, str]:
    want = {}
    for algo, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is None:
            continue
        value = value.strip().lower()
        if len(value) != length or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"expected {algo} must be {length} hex digits, got {value!r}")
        want[algo] = value
    return want


def _describe(want: dict[str, str]) -> str:
    return ", ".join(f"{algo.upper()} {value}" for algo, value in want.items()) or "any checksum"


def hash_file(path: str | os.PathLike) -> dict[str, str]:
    """MD5 and SHA-256 of a file, in one pass."""
    digests = {algo: hashlib.new(algo) for algo in _ALGOS}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            for d in digests.values():
                d.update(block)
    return {algo: d.hexdigest() for algo, d in digests.items()}


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the digest cache of ``path`` lives: ``.<name>.digests.json`` beside it."""
    p = Path(path)
    return p.with_name(f".{p.name}.digests.json")


def _stat_key(path: Path) -> dict[str, int]:
    """Size and mtime (and the inode: a file swapped in by rename is always hashed again)."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def file_digests(path: str | os.PathLike, *, cache: bool = True) -> dict[str, str]:
    """MD5 and SHA-256 of ``path``, from the sidecar cache when size and mtime still match.

    A missing, unreadable or stale sidecar means the file is hashed again; the sidecar is then
    rewritten atomically (silently skipped when the folder is read-only).
    """
    p = Path(path)
    key = _stat_key(p)
    side = sidecar_path(p)
    if cache:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(side.read_text())
            if (
                isinstance(record, dict)
                and all(record.get(k) == v for k, v in key.items())
                and all(isinstance(record.get(a), str) for a in _ALGOS)
            ):
                return {a: record[a] for a in _ALGOS}
    digests = hash_file(p)
    if cache and _stat_key(p) == key:  # not changed while hashing
        _write_sidecar(side, {**key, **digests})
    return digests


def _write_sidecar(side: Path, record: dict) -> None:
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{side.name}.", suffix=".tmp", dir=side.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        _default_permissions(Path(tmp))
        os.replace(tmp, side)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _default_permissions(path: Path) -> None:
    """Give a mkstemp file (mode 0600) the mode a plain ``open`` would have: 0666 minus umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _mismatch(found: dict[str, str], want: dict[str, str]) -> dict[str, str]:
    return {a: found[a] for a in want if found[a] != want[a]}


def move_aside(path: str | os.PathLike, name_like: str | os.PathLike | None = None) -> Path:
    """Rename ``path`` to ``<name>.bad`` (or ``<name>.bad.N`` if taken) and return the new path.

    ``<name>`` is the name of ``name_like`` (default ``path``), in the same folder. Never
    overwrites: a hard link is tried first (it fails if the name exists), then, where hard links
    are unsupported, a rename after an existence check.
    """
    p = Path(path)
    base = Path(name_like) if name_like is not None else p
    for i in range(10_000):
        name = f"{base.name}.bad" if i == 0 else f"{base.name}.bad.{i}"
        candidate = p.with_name(name)
        try:
            os.link(p, candidate)
        except FileExistsError:
            continue
        except OSError:
            if candidate.exists():
                continue
            os.replace(p, candidate)
            return candidate
        os.unlink(p)
        return candidate
    raise RuntimeError(
        f"cannot move '{p}' aside: too many '{base.name}.bad.N' files; clean them up"
    )


def verify_file(
    path: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    what: str = "data file",
    hint: str = "",
    cache: bool = True,
) -> dict[str, str]:
    """Check ``path`` against the expected digests (load path); return its digests.

    Raises :class:`ChecksumError` naming the file, the expected and found digests, and ``hint``
    (what the user can do). The file is left where it is: loading never moves or deletes files.
    """
    p = Path(path)
    want = _expected(md5, sha256)
    if not p.is_file():
        raise DataUnavailableError(f"{what} '{p}' is missing. {hint}".strip())
    found = file_digests(p, cache=cache)
    bad = _mismatch(found, want)
    if bad:
        raise ChecksumError(
            f"{what} '{p}' has "
            + ", ".join(f"{a.upper()} {bad[a]}" for a in bad)
            + f", expected {_describe({a: want[a] for a in bad})}. {hint}".rstrip()
        )
    return found


def _progress(name: str, total: int | None, log: Callable[[str], None]) -> Callable[[int], None]:
    """A callback taking bytes done; logs at most every 5 s, and at the end, for large files."""
    state = {"last": time.monotonic(), "start": time.monotonic()}

    def report(done: int, final: bool = False) -> None:
        now = time.monotonic()
        if total is not None and total < PROGRESS_MIN_BYTES:
            return
        if total is None and done < PROGRESS_MIN_BYTES:
            return
        if not final and now - state["last"] < 5.0:
            return
        state["last"] = now
        rate = done / max(now - state["start"], 1e-9) / 1e6
        of = f"/{total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else " MB"
        log(f"{name}: {done / 1e6:.1f}{of} at {rate:.1f} MB/s")

    return report


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    log: Callable[[str], None] = _log,
    hint: str = "",
) -> Path:
    """Stream ``url`` to a temporary file beside ``dest``, verify it, rename it to ``dest``.

    On a checksum mismatch the downloaded bytes are kept at ``<dest>.bad[.N]`` and
    :class:`ChecksumError` names that path, ``dest`` and both digests. Network errors raise
    :class:`DataUnavailableError` naming ``url`` and ``dest``; nothing is left behind.
    """
    dest = Path(dest)
    want = _expected(md5, sha256)
    if not want:
        raise ValueError(f"download of {url}: give an MD5 or SHA-256 to verify '{dest}' against")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digests = {algo: hashlib.new(algo) for algo in _ALGOS}
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                report = _progress(dest.name, int(length) if length else None, log)
                done = 0
                for block in iter(lambda: resp.read(_CHUNK), b""):
                    for d in digests.values():
                        d.update(block)
                    out.write(block)
                    done += len(block)
                    report(done)
                report(done, final=True)
            if length is not None and done != int(length):
                raise ConnectionError(f"connection closed after {done} of {length} bytes")
        except _NETWORK_ERRORS as exc:
            raise DataUnavailableError(_network_message(url, dest, want, exc, hint)) from exc
        found = {a: d.hexdigest() for a, d in digests.items()}
        bad = _mismatch(found, want)
        if bad:
            kept = move_aside(tmp, name_like=dest)
            raise ChecksumError(
                f"the file downloaded from {url} for '{dest}' has "
                + ", ".join(f"{a.upper()} {bad[a]}" for a in bad)
                + f", expected {_describe({a: want[a] for a in bad})}; it was kept at '{kept}' "
                f"for inspection and '{dest}' was not created. Retry later, check the URL and "
                f"checksum, or place a correct file at '{dest}'. {hint}".rstrip()
            )
        _default_permissions(tmp)  # mkstemp makes it private; a data cache is shared
        os.replace(tmp, dest)
        _write_sidecar(sidecar_path(dest), {**_stat_key(dest), **found})  # spare the first load
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def _network_message(
    url: str, dest: Path, want: dict[str, str], exc: BaseException, hint: str
) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        reason = f"HTTP {exc.code} {exc.reason}"
    else:
        reason = str(getattr(exc, "reason", exc))
    return (
        f"cannot download {url} to '{dest}': {reason}. If this machine is offline, download "
        f"the file elsewhere and place it at '{dest}' ({_describe(want)}). {hint}"
    ).rstrip()


def ensure_file(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    mirrors: Iterable[str | os.PathLike] = (),
    log: Callable[[str], None] = _log,
    hint: str = "",
) -> Path:
    """Return ``dest`` once it holds a verified file, fetching it if needed.

    Order: a file already at ``dest`` with the right digests is used as is (one with wrong digests
    is moved aside, see :func:`move_aside`); else a verified copy of the same name in one of
    ``mirrors`` (folders, e.g. another tool's cache) is hard-linked or copied in; else ``url`` is
    downloaded with :func:`download`. Errors name every path involved.
    """
    dest = Path(dest)
    want = _expected(md5, sha256)
    if not want:
        raise ValueError(f"'{dest}': give an MD5 or SHA-256 to verify it against")
    moved: Path | None = None
    if dest.is_file():
        found = file_digests(dest)
        bad = _mismatch(found, want)
        if not bad:
            return dest
        moved = move_aside(dest)
        log(
            f"'{dest}' has "
            + ", ".join(f"{a.upper()} {bad[a]}" for a in bad)
            + f", expected {_describe(want)}: moved it aside to '{moved}' and fetching again"
        )
    note = f" (the previous file at that path was moved aside to '{moved}')" if moved else ""

    for mirror in mirrors:
        candidate = Path(mirror).expanduser() / dest.name
        if not candidate.is_file() or candidate.resolve() == dest.resolve():
            continue
        found = file_digests(candidate, cache=False)
        if _mismatch(found, want):
            log(f"ignoring '{candidate}': {_describe(found)}, expected {_describe(want)}")
            continue
        _link_or_copy(candidate, dest)
        log(f"reused verified copy '{candidate}' -> '{dest}'")
        return dest

    log(f"downloading {url} -> '{dest}'")
    try:
        return download(url, dest, md5=md5, sha256=sha256, timeout=timeout, log=log, hint=hint)
    except (ChecksumError, DataUnavailableError) as exc:
        if not moved:
            raise
        raise type(exc)(f"{exc}{note}") from exc


def _link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (same file system) or copy it, atomically."""
    import shutil

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
