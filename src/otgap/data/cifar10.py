"""CIFAR-10 (python version) from the official archive, downloaded and verified without torchvision.

Archive, URL and MD5 as in docs/sources.md#mnist-and-cifar-10: ``cifar-10-python.tar.gz`` holds five
training batches and one test batch under ``cifar-10-batches-py/``, each a pickle of a dict with
``b"data"`` (10000 x 3072 uint8, channel-major: 1024 red, 1024 green, 1024 blue values per image)
and ``b"labels"`` (a list of ints in 0..9).

Unpickling is code execution, so two guards: the archive's MD5 must match before any member is
read, and the pickles are read with :class:`RestrictedUnpickler`, which resolves only the three
globals a NumPy array needs (``_reconstruct``, ``ndarray``, ``dtype``) and refuses every other
one. Nothing is extracted to disk (the six members are read from the archive in memory by their
exact names), so a hostile member name cannot write outside the data folder.

Inputs are float32 ``(N, 3, 32, 32)`` scaled to ``[0, 1]`` (no normalisation: callers add the
``Normalize(0.5, 0.5)`` or per-channel statistics they need).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgap.data.dataset import DATA_ROOT, ClassificationData
from otgap.data.fetch import DataUnavailableError, ensure_file, verify_file

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_MAX_MEMBER_BYTES = 64 << 20  # a real batch pickle is ~31 MB


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_ALLOWED_GLOBALS = {
    # What the official files reference (pickled by NumPy 1.x), and the NumPy 2 spelling.
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and NumPy arrays, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': a CIFAR-10 batch holds only a dict "
                "of bytes, lists, ints and a NumPy uint8 array"
            )
        return factory()


def restricted_loads(raw: bytes) -> Any:
    """Unpickle ``raw`` (Python 2 strings read as bytes, as in the official files) restrictedly."""
    return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()


def _log(msg: str) -> None:
    print(f"[cifar10] {msg}", file=sys.stderr, flush=True)


def archive_path(root: str | os.PathLike = DATA_ROOT / "cifar10") -> Path:
    """``<root>/cifar-10-python.tar.gz`` (``root``: the folder holding it, e.g. resources/cifar10)."""
    return Path(root) / CIFAR10_ARCHIVE


def download_cifar10(
    root: str | os.PathLike = DATA_ROOT / "cifar10",
    *,
    url: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch and verify the archive into ``root`` (kept if already verified); return its path.

    A file with a wrong MD5 is moved aside to ``<name>.bad``, never deleted. ``url``/``md5``
    override the official ones (tests use a local server).
    """
    url = CIFAR10_URL if url is None else url
    md5 = CIFAR10_MD5 if md5 is None else md5
    dest = archive_path(root)
    Path(root).mkdir(parents=True, exist_ok=True)
    return ensure_file(url, dest, md5=md5, timeout=timeout, log=_log)


def _read_batch(
    tar: tarfile.TarFile, member_name: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    try:
        member = tar.getmember(member_name)
    except KeyError:
        raise ValueError(f"{where}: the archive has no member '{member_name}'") from None
    if not member.isfile():
        raise ValueError(f"{where}: '{member_name}' is not a regular file in the archive")
    if member.size > _MAX_MEMBER_BYTES:
        raise ValueError(f"{where}: '{member_name}' is {member.size} bytes, too large for a batch")
    fh = tar.extractfile(member)
    if fh is None:
        raise ValueError(f"{where}: cannot read '{member_name}'")
    try:
        batch = restricted_loads(fh.read())
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{where}: '{member_name}' is not a plain CIFAR-10 batch: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(
            f"{where}: '{member_name}' must be a dict with b'data' and b'labels', got {keys}"
        )
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"{where}: '{member_name}' b'data' must be a 2-D uint8 array")
    if data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{where}: '{member_name}' b'data' rows have {data.shape[1]} values, not 3072"
        )
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise ValueError(f"{where}: '{member_name}' b'labels' must be a list of ints")
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(data),):
        raise ValueError(f"{where}: '{member_name}' has {len(data)} images but {len(y)} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{where}: '{member_name}' labels must lie in 0..9")
    return data, y


def read_archive(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The six batches of an (already verified) archive, by member name, read in memory."""
    where = f"CIFAR-10 archive '{path}'"
    try:
        with tarfile.open(path, "r:gz") as tar:
            return {
                name: _read_batch(tar, f"{CIFAR10_FOLDER}/{name}", where)
                for name in (*TRAIN_BATCHES, TEST_BATCH)
            }
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{where} is not a readable tar.gz: {exc}") from exc


def _to_tensor(data: np.ndarray) -> torch.Tensor:
    x = data.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(np.ascontiguousarray(x))


def load_cifar10(
    root: str | os.PathLike = DATA_ROOT / "cifar10",
    *,
    download: bool = False,
    md5: str | None = None,
    url: str | None = None,
) -> ClassificationData:
    """CIFAR-10 from the archive in ``root``: inputs float32 ``(N, 3, 32, 32)`` in ``[0, 1]``.

    The archive's MD5 is checked (cached by size and mtime) before anything in it is unpickled;
    ``download`` fetches it first. ``md5``/``url`` override the official values (tests).
    """
    official = md5 is None
    md5 = CIFAR10_MD5 if md5 is None else md5
    url = CIFAR10_URL if url is None else url
    path = download_cifar10(root, url=url, md5=md5) if download else archive_path(root)
    if not path.is_file():
        raise DataUnavailableError(
            f"CIFAR-10 archive '{path}' is missing: run the workflow's rule cifar10_download, or "
            f"fetch {url} (MD5 {md5}) and place it there"
        )
    digests = verify_file(
        path,
        md5=md5,
        what="CIFAR-10 archive",
        hint=(
            f"Run the workflow's rule cifar10_download (it moves this file aside to "
            f"'{path.name}.bad' and fetches {url}), or put the correct file there."
        ),
    )
    batches = read_archive(path)
    train = [batches[name] for name in TRAIN_BATCHES]
    x_test, y_test = batches[TEST_BATCH]
    source = {
        "files": [
            {
                "path": str(path),
                "size_bytes": path.stat().st_size,
                "md5": digests["md5"],
                "sha256": digests["sha256"],
            }
        ],
        "md5_policy": "official" if official else "custom",
    }
    return ClassificationData(
        name="cifar10",
        x_train=_to_tensor(np.concatenate([d for d, _ in train])),
        y_train=torch.from_numpy(np.concatenate([y for _, y in train])),
        x_test=_to_tensor(x_test),
        y_test=torch.from_numpy(y_test),
        n_classes=10,
        source=source,
    )
