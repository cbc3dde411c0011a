"""MNIST from its four IDX files (gzip), downloaded and verified without torchvision.

Files, mirror and MD5s as in docs/sources.md#mnist-and-cifar-10 (the mirror torchvision uses). IDX format:
a big-endian header (magic 2051 for images, followed by the count, rows and columns; magic 2049
for labels, followed by the count) and a uint8 payload. Inputs are float32 ``(N, 1, 28, 28)``
scaled to ``[0, 1]`` (``x / 255``, no standardisation: callers normalise if they want to);
60,000 training and 10,000 test samples, 10 classes, no validation part.
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import torch

from otgap.data.dataset import DATA_ROOT, ClassificationData
from otgap.data.fetch import DataUnavailableError, ensure_file, verify_file

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_FILES = tuple(MNIST_MD5)
IDX_IMAGES, IDX_LABELS = 2051, 2049


def _log(msg: str) -> None:
    print(f"[mnist] {msg}", file=sys.stderr, flush=True)


def parse_idx(raw: bytes, where: str = "IDX data") -> np.ndarray:
    """Parse an (uncompressed) IDX images (2051) or labels (2049) file into a uint8 array.

    Images come back as ``(n, rows, cols)``, labels as ``(n,)``. The header must be complete and
    the payload exactly as long as it says.
    """
    if len(raw) < 8:
        raise ValueError(f"{where}: {len(raw)} bytes, too short for an IDX header")
    magic, n = struct.unpack(">ii", raw[:8])
    if magic == IDX_IMAGES:
        if len(raw) < 16:
            raise ValueError(f"{where}: truncated IDX images header")
        rows, cols = struct.unpack(">ii", raw[8:16])
        shape, offset = (n, rows, cols), 16
    elif magic == IDX_LABELS:
        shape, offset = (n,), 8
    else:
        raise ValueError(
            f"{where}: IDX magic number {magic}, expected {IDX_IMAGES} (images) or "
            f"{IDX_LABELS} (labels); is this an MNIST file?"
        )
    if min(shape) < 0:
        raise ValueError(f"{where}: negative dimension in IDX header {shape}")
    want = int(np.prod(shape))
    if len(raw) - offset != want:
        raise ValueError(
            f"{where}: IDX header says {shape} ({want} bytes), payload has {len(raw) - offset}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def read_idx_gz(path: str | os.PathLike) -> np.ndarray:
    """Read a gzip-compressed IDX file (see :func:`parse_idx`)."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"'{path}' is not a readable gzip file: {exc}") from exc
    return parse_idx(raw, where=f"'{path}'")


def mnist_paths(root: str | os.PathLike = DATA_ROOT / "mnist") -> dict[str, Path]:
    """The four file paths in ``root`` (the folder holding them, e.g. ``resources/mnist``)."""
    return {name: Path(root) / name for name in MNIST_FILES}


def download_mnist(
    root: str | os.PathLike = DATA_ROOT / "mnist",
    *,
    base_url: str | None = None,
    md5: dict[str, str] | None = None,
    timeout: float = 60.0,
    files: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Fetch and verify the four MNIST files (or only ``files``) into ``root``; return their paths.

    A verified file is kept as is; one with a wrong MD5 is moved aside to ``<name>.bad``, never
    deleted. ``base_url`` and ``md5`` (file name -> MD5) override the official ones (tests use a
    local server).
    """
    md5 = MNIST_MD5 if md5 is None else md5
    base_url = MNIST_URL if base_url is None else base_url
    base = base_url if base_url.endswith("/") else base_url + "/"
    paths = mnist_paths(root)
    if files is not None:
        unknown = sorted(set(files) - set(paths))
        if unknown:
            raise ValueError(f"unknown MNIST file(s) {unknown}; the files are {list(paths)}")
        paths = {name: paths[name] for name in files}
    Path(root).mkdir(parents=True, exist_ok=True)
    need = ", ".join(f"{name} (MD5 {md5[name]})" for name in MNIST_FILES)
    for name, dest in paths.items():
        ensure_file(
            base + name,
            dest,
            md5=md5[name],
            timeout=timeout,
            log=_log,
            hint=f"MNIST needs all four files in '{root}': {need}, from {base}.",
        )
    return paths


def load_mnist(
    root: str | os.PathLike = DATA_ROOT / "mnist",
    *,
    download: bool = False,
    md5: dict[str, str] | None = None,
    base_url: str | None = None,
) -> ClassificationData:
    """MNIST from the four IDX files in ``root``: inputs float32 ``(N, 1, 28, 28)`` in ``[0, 1]``.

    Every file's MD5 is checked before it is parsed (cached by size and mtime); ``download``
    fetches missing files first. ``md5``/``base_url`` override the official values (tests).
    """
    official = md5 is None
    md5 = MNIST_MD5 if md5 is None else md5
    base_url = MNIST_URL if base_url is None else base_url
    paths = download_mnist(root, base_url=base_url, md5=md5) if download else mnist_paths(root)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DataUnavailableError(
            f"MNIST file(s) missing: {', '.join(missing)}. Run the workflow's rule "
            f"mnist_download, or fetch them from {base_url} and place them in '{root}'"
        )
    files, arrays = [], {}
    for name, path in paths.items():
        digests = verify_file(
            path,
            md5=md5[name],
            what="MNIST file",
            hint=(
                f"Run the workflow's rule mnist_download (it moves this file aside to "
                f"'{name}.bad' and fetches {base_url}{name}), or put the correct file there."
            ),
        )
        files.append(
            {
                "path": str(path),
                "size_bytes": path.stat().st_size,
                "md5": digests["md5"],
                "sha256": digests["sha256"],
            }
        )
        arrays[name] = read_idx_gz(path)
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = arrays[f"{prefix}-images-idx3-ubyte.gz"]
        labels = arrays[f"{prefix}-labels-idx1-ubyte.gz"]
        if images.ndim != 3 or len(images) != len(labels):
            raise ValueError(
                f"MNIST {split}: {images.shape} images but {labels.shape} labels in '{root}'"
            )
        if labels.size and int(labels.max()) > 9:
            raise ValueError(f"MNIST {split}: labels must lie in 0..9, found {int(labels.max())}")
        x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
        parts[f"x_{split}"] = x.unsqueeze(1).contiguous()
        parts[f"y_{split}"] = torch.from_numpy(labels.astype(np.int64))
    return ClassificationData(
        name="mnist",
        n_classes=10,
        source={"files": files, "md5_policy": "official" if official else "custom"},
        **parts,
    )
