"""MedMNIST 2D data sets: download with an MD5 check, reuse of cached copies, validated loading.

Files and checksums come from ``medmnist.INFO`` (the installed ``medmnist`` package is used as a
table only; its own downloader needs torchvision). Downloads use the standard library's
``urllib`` rather than pooch: the stage needs exact control over the socket timeout, over what
happens to a file with a wrong checksum (deleted, and an error naming the file and both digests),
and over reuse of a copy in medmnist's own cache ``~/.medmnist``; pooch would re-download silently
on a mismatch and phrase errors its own way, so it would have to be wrapped at every point anyway.

Inputs are normalised as the paper's ``Normalize(0.5, 0.5)``: ``x / 255 * 2 - 1`` in ``[-1, 1]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from otgap.data.classification import DEFAULT_ROOT, ClassificationData
from otgap.io import default_file_mode, ensure_writable_dir

SIZES = (28, 64, 128, 224)
SPLITS = ("train", "val", "test")
_CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded or cached file does not have the expected MD5."""


class DataUnavailableError(RuntimeError):
    """The file is neither cached nor downloadable."""


def _info(flag: str) -> dict:
    import medmnist

    if flag not in medmnist.INFO:
        flags_2d = sorted(f for f in medmnist.INFO if not f.endswith("3d"))
        raise ValueError(f"unknown MedMNIST flag '{flag}'; 2D flags: {', '.join(flags_2d)}")
    if flag.endswith("3d"):
        raise ValueError(
            f"MedMNIST flag '{flag}' is a 3D volume data set; this stage takes 2D images only"
        )
    return medmnist.INFO[flag]


def _check_size(size: int) -> None:
    if size not in SIZES:
        raise ValueError(f"unknown MedMNIST image size {size}; choose one of {SIZES}")


def file_name(flag: str, size: int = 28) -> str:
    """File name used by MedMNIST (and by this project's cache): ``pathmnist.npz``, ``..._64.npz``."""
    _check_size(size)
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def remote(flag: str, size: int = 28) -> tuple[str, str]:
    """(URL, MD5) of one MedMNIST file, from ``medmnist.INFO``."""
    info = _info(flag)
    _check_size(size)
    suffix = "" if size == 28 else f"_{size}"
    return info[f"url{suffix}"], info[f"MD5{suffix}"]


def md5sum(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def medmnist_home() -> Path:
    """medmnist's own default cache, ``~/.medmnist`` (read at call time, so HOME can change)."""
    return Path.home() / ".medmnist"


def _log(msg: str) -> None:
    print(f"[medmnist] {msg}", file=sys.stderr, flush=True)


def _link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (same file system) or copy it atomically."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, check its MD5, rename it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(_CHUNK), b""):
                digest.update(block)
                out.write(block)
        found = digest.hexdigest()
        if found != md5:
            raise ChecksumError(
                f"checksum mismatch for '{dest}' downloaded from {url}: expected MD5 {md5}, "
                f"found {found}; the file was deleted. Retry, or check the URL/MD5 in medmnist.INFO."
            )
        os.chmod(tmp, default_file_mode())  # not mkstemp's 0600: others may read the data
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def download_medmnist(
    flag: str,
    size: int = 28,
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    url: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    mirrors: tuple[str | os.PathLike, ...] | None = None,
) -> Path:
    """Return the path of a verified ``<flag>[_<size>].npz`` in ``root``, fetching it if needed.

    Order: a file already in ``root`` with the right MD5 is used as is (one with a wrong MD5 is
    deleted and fetched again); else a verified copy in a mirror folder (default ``~/.medmnist``) is
    hard-linked or copied into ``root``; else the file is downloaded from ``url`` (default: the URL
    in ``medmnist.INFO``), its MD5 checked and the file renamed into place. ``url``/``md5`` override
    the table (tests use a local server).
    """
    default_url, default_md5 = remote(flag, size)
    url = url or default_url
    md5 = (md5 or default_md5).lower()
    root = ensure_writable_dir(root)
    dest = root / file_name(flag, size)

    if dest.is_file():
        found = md5sum(dest)
        if found == md5:
            return dest
        _log(f"cached '{dest}' has MD5 {found}, expected {md5}: deleting it and fetching again")
        dest.unlink()

    for mirror in (medmnist_home(),) if mirrors is None else mirrors:
        candidate = Path(mirror).expanduser() / dest.name
        if candidate.is_file() and candidate.resolve() != dest.resolve():
            found = md5sum(candidate)
            if found == md5:
                _link_or_copy(candidate, dest)
                _log(f"reused verified copy '{candidate}' -> '{dest}'")
                return dest
            _log(f"ignoring '{candidate}': MD5 {found}, expected {md5}")

    _log(f"downloading {url} -> '{dest}'")
    try:
        _fetch(url, dest, md5, timeout)
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataUnavailableError(
            f"cannot download MedMNIST '{flag}' (size {size}) from {url}: {reason}. "
            f"Without network, download it elsewhere and place it at '{dest}' "
            f"(MD5 {md5}), or in '{medmnist_home()}'."
        ) from exc
    return dest


def _images_to_tensor(images: np.ndarray, where: str, size: int, channels: int) -> torch.Tensor:
    if images.dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8, got {images.dtype}")
    if channels == 1 and images.ndim == 3:
        images = images[:, None]
    elif channels == 3 and images.ndim == 4 and images.shape[-1] == 3:
        images = images.transpose(0, 3, 1, 2)
    else:
        want = "(N, H, W)" if channels == 1 else "(N, H, W, 3)"
        raise ValueError(f"{where}: images must have shape {want}, got {images.shape}")
    if images.shape[2:] != (size, size):
        raise ValueError(f"{where}: images are {images.shape[2:]}, expected ({size}, {size})")
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    return x.div_(255.0).mul_(2.0).sub_(1.0)


def _labels_to_tensor(labels: np.ndarray, where: str, n: int) -> torch.Tensor:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n,):
        raise ValueError(
            f"{where}: labels must have shape ({n}, 1) or ({n},) to match the images, "
            f"got {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integers, got {labels.dtype}")
    return torch.from_numpy(labels.astype(np.int64))


def load_npz(path: str | os.PathLike, flag: str, size: int = 28) -> ClassificationData:
    """Read and validate one MedMNIST npz (all six keys, shapes, dtypes, label range)."""
    info = _info(flag)
    if "multi-label" in info["task"]:
        raise ValueError(
            f"MedMNIST '{flag}' is a multi-label task ({info['task']}); this stage trains "
            "single-label classifiers only"
        )
    path = Path(path)
    keys = [f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels")]
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise KeyError(
                    f"MedMNIST file '{path}' lacks the key(s) {missing}; it has {sorted(npz.files)}"
                )
            arrays = {k: npz[k] for k in keys}
    except (OSError, ValueError) as exc:
        raise ValueError(f"MedMNIST file '{path}' is not a readable npz archive: {exc}") from exc
    n_classes = len(info["label"])
    parts = {}
    for split in SPLITS:
        where = f"'{path}' [{split}]"
        x = _images_to_tensor(arrays[f"{split}_images"], where, size, int(info["n_channels"]))
        parts[f"x_{split}"] = x
        parts[f"y_{split}"] = _labels_to_tensor(arrays[f"{split}_labels"], where, len(x))
    return ClassificationData(name=flag, n_classes=n_classes, **parts)


def load_medmnist(
    flag: str,
    size: int = 28,
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    download: bool = False,
) -> ClassificationData:
    """Load a MedMNIST 2D data set from ``root`` (downloading it first if ``download``)."""
    _info(flag)
    path = Path(root) / file_name(flag, size)
    if download:
        path = download_medmnist(flag, size, root)
    elif not path.is_file():
        url, md5 = remote(flag, size)
        raise DataUnavailableError(
            f"MedMNIST file '{path}' is missing: run the workflow's download rule "
            f"(eos_download), or fetch {url} (MD5 {md5}) and place it there"
        )
    return load_npz(path, flag, size)
