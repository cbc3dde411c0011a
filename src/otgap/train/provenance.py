"""Provenance of a result: which code, configuration, packages and device produced it.

Provenance goes into sidecar JSON files only, never into the data or metric files themselves, so the
result files stay bitwise reproducible while the sidecar says where they came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "torchdiffeq",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "medmnist",
    "snakemake",
)


def params_hash(params: Any) -> str:
    """SHA-256 of a canonical JSON dump of ``params`` (sorted keys), the job's configuration hash."""
    blob = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """The current git commit (with '-dirty' if tracked files differ), or 'unknown' outside git."""
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    torch = sys.modules.get("torch")  # only describe torch if the job uses it (import is slow)
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def provenance(params: Any = None, **extra: Any) -> dict[str, Any]:
    """A provenance record for a sidecar: commit, params hash, package versions, device, time."""
    record = {
        "git_commit": git_commit(),
        "params_hash": params_hash(params) if params is not None else None,
        "params": params,
        "packages": package_versions(),
        "device": device_info(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    record.update(extra)
    return record
