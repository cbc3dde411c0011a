"""MedMNIST 2D data sets: download with an MD5 check, reuse of cached copies, validated loading.

Files and checksums come from ``medmnist.INFO`` (the installed ``medmnist`` package is used as a
table only; its own downloader needs torchvision). Fetching, verification and moving a bad file
aside (never deleting it) are :mod:`otgap.data.fetch`'s; this module adds the MedMNIST names, the
reuse of a verified copy in medmnist's own cache ``~/.medmnist``, the checksum policy of the
config key ``data.medmnist_md5`` and the validation of the arrays.

Checksum policy (``md5=`` of :func:`load_medmnist` and :func:`download_medmnist`):
``official`` (the MD5 in ``medmnist.INFO``), ``skip`` (accept whatever file is there, logged as a
warning; a missing file is downloaded and checked against the official MD5) or a 32-digit hex MD5
(accept exactly that file deliberately, e.g. a local subset; logged as a warning when it differs
from the official one).

Inputs are normalised as the paper's ``Normalize(0.5, 0.5)``: ``x / 255 * 2 - 1`` in ``[-1, 1]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgap.data.dataset import DEFAULT_ROOT, ClassificationData
from otgap.data.fetch import (
    ChecksumError,
    DataUnavailableError,
    ensure_file,
    file_digests,
    hash_file,
    verify_file,
)
from otgap.io import ensure_writable_dir

__all__ = [
    "SIZES",
    "SPLITS",
    "ChecksumError",
    "DataUnavailableError",
    "download_medmnist",
    "expected_md5",
    "file_name",
    "load_medmnist",
    "load_npz",
    "md5sum",
    "medmnist_home",
    "remote",
]

SIZES = (28, 64, 128, 224)
SPLITS = ("train", "val", "test")
MD5_POLICIES = ("official", "skip")


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
    """MD5 of a file (hashed afresh, no cache)."""
    return hash_file(path)["md5"]


def expected_md5(policy: str | None, official: str) -> str | None:
    """The MD5 a file must have under ``policy`` (``official``/None, ``skip`` -> None, or hex)."""
    if policy is None or policy == "official":
        return official.lower()
    if policy == "skip":
        return None
    value = str(policy).strip().lower()
    if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(
            f"MedMNIST checksum policy (config key data.medmnist_md5) must be 'official', 'skip' "
            f"or a 32-digit hex MD5, got {policy!r}"
        )
    return value


def medmnist_home() -> Path:
    """medmnist's own default cache, ``~/.medmnist`` (read at call time, so HOME can change)."""
    return Path.home() / ".medmnist"


def _log(msg: str) -> None:
    print(f"[medmnist] {msg}", file=sys.stderr, flush=True)


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

    Order: a file already in ``root`` with the expected MD5 is used as is (one with another MD5 is
    moved aside to ``<name>.bad[.N]``, never deleted, and fetched again); else a verified copy in a
    mirror folder (default ``~/.medmnist``) is hard-linked or copied into ``root``; else the file is
    downloaded from ``url`` (default: the URL in ``medmnist.INFO``), its MD5 checked and the file
    renamed into place. ``md5`` is the checksum policy (module docstring; None means official);
    with ``skip`` any file already in ``root`` is kept. ``url`` overrides the table (tests use a
    local server).
    """
    default_url, official = remote(flag, size)
    url = url or default_url
    want = expected_md5(md5, official)
    root = ensure_writable_dir(root)
    dest = root / file_name(flag, size)
    if want is None:
        if dest.is_file():
            _log(f"WARNING: data.medmnist_md5 is 'skip': keeping '{dest}' without a checksum check")
            return dest
        want = official.lower()
    return ensure_file(
        url,
        dest,
        md5=want,
        timeout=timeout,
        mirrors=(medmnist_home(),) if mirrors is None else mirrors,
        log=_log,
        hint=f"(MedMNIST '{flag}', size {size}; medmnist's cache '{medmnist_home()}' is also "
        "searched for a verified copy.)",
    )


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


def load_npz(
    path: str | os.PathLike, flag: str, size: int = 28, *, source: dict[str, Any] | None = None
) -> ClassificationData:
    """Read and validate one MedMNIST npz (all six keys, shapes, dtypes, label range).

    No checksum check here (:func:`load_medmnist` does it); ``source`` is stored on the result.
    """
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
    return ClassificationData(name=flag, n_classes=n_classes, source=source, **parts)


def load_medmnist(
    flag: str,
    size: int = 28,
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    download: bool = False,
    md5: str = "official",
) -> ClassificationData:
    """Load a MedMNIST 2D data set from ``root`` (downloading it first if ``download``).

    The file's MD5 is checked against ``md5`` (policy in the module docstring; digests cached by
    size and mtime beside the file) before it is read. The result's ``source`` records the file,
    its MD5/SHA-256, the official MD5 and the policy, for the run's provenance sidecar.
    """
    _info(flag)
    url, official = remote(flag, size)
    want = expected_md5(md5, official)
    path = Path(root) / file_name(flag, size)
    if download:
        path = download_medmnist(flag, size, root, md5=md5)
    elif not path.is_file():
        raise DataUnavailableError(
            f"MedMNIST file '{path}' is missing: run the workflow's download rule "
            f"(eos_download), or fetch {url} (MD5 {official}) and place it there"
        )
    if want is None:
        digests = file_digests(path)
        _log(
            f"WARNING: data.medmnist_md5 is 'skip': '{path}' (MD5 {digests['md5']}) is used "
            f"without a check against the official MD5 {official}"
        )
    else:
        digests = verify_file(
            path,
            md5=want,
            what="MedMNIST file",
            hint=(
                "Run the workflow's download rule (eos_download): it moves this file aside to "
                f"'{path.name}.bad' and fetches the official one ({url}). To use this file "
                "deliberately, set the config key data.medmnist_md5 to its MD5 (or to 'skip')."
            ),
        )
        if want != official.lower():
            _log(
                f"WARNING: using '{path}' with MD5 {want} set by data.medmnist_md5, not the "
                f"official MD5 {official}"
            )
    source = {
        "files": [
            {
                "path": str(path),
                "size_bytes": path.stat().st_size,
                "md5": digests["md5"],
                "sha256": digests["sha256"],
                "official_md5": official.lower(),
                "url": url,
            }
        ],
        "md5_policy": (md5 or "official") if (md5 or "official") in MD5_POLICIES else "hex",
        "md5_expected": want,
        "matches_official": digests["md5"] == official.lower(),
    }
    return load_npz(path, flag, size, source=source)
