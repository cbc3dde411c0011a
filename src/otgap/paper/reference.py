"""A kept reference result of another run (docs/reference/<run>/): its summary tables with a digest
of the code and configuration that made them, checked before the paper uses them.

    python -m otgap.paper.reference keep results/original_quick docs/reference/original_quick \\
        --config config/original_quick.yaml
    python -m otgap.paper.reference check docs/reference/original_quick --config config/original_quick.yaml

``keep`` copies the files of :data:`KEPT` from a finished run and writes ``digest.json``
(SHA-256 of the configuration files and of the workflow's code); ``check`` says whether the
digest still matches the current code and configuration. The quick run never rebuilds the
reference (budget): it uses one that is current, and otherwise the paper omits the comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# (path under the run's results folder) kept in the reference
KEPT = (
    "aggregate/fhn/stats.csv",
    "aggregate/eos/summary.csv",
    "data/fhn/system=fhn/lyapunov.json",
)
CODE_GLOBS = ("src/otgap/**/*.py", "scripts/*.py", "workflow/Snakefile", "workflow/rules/*.smk")


def files_digest(paths: Sequence[Path], root: Path) -> str:
    """SHA-256 over the files' paths (relative to ``root``) and contents, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def code_digest(repo: Path = REPO) -> str:
    paths = [p for g in CODE_GLOBS for p in repo.glob(g) if p.is_file()]
    return files_digest(paths, repo)


def config_digest(config: str | Path, repo: Path = REPO) -> str:
    paths = [repo / "config" / "config.yaml", Path(config).resolve()]
    return files_digest(paths, repo)


def reference_status(
    ref_dir: str | Path, config: str | Path, repo: Path = REPO
) -> tuple[bool, str]:
    """(usable, why): the reference exists, has its files and its digest matches."""
    ref = Path(ref_dir)
    digest_file = ref / "digest.json"
    if not digest_file.is_file():
        return False, "no reference result kept"
    try:
        digest = json.loads(digest_file.read_text())
    except json.JSONDecodeError:
        return False, "its digest.json is not valid JSON"
    missing = [k for k in KEPT if not (ref / k).is_file()]
    if missing:
        return False, f"it lacks {missing}"
    if not Path(config).is_file():
        return False, f"{config} does not exist"
    if digest.get("config") != config_digest(config, repo):
        return False, "it was made with another configuration"
    if digest.get("code") != code_digest(repo):
        return False, "it was made with other code (stale)"
    return True, "current"


def keep(run_dir: str | Path, ref_dir: str | Path, config: str | Path, repo: Path = REPO) -> Path:
    run, ref = Path(run_dir), Path(ref_dir)
    missing = [k for k in KEPT if not (run / k).is_file()]
    if missing:
        raise FileNotFoundError(f"{run} lacks {missing}: finish that run first")
    for k in KEPT:
        (ref / k).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / k, ref / k)
    digest = {"config": config_digest(config, repo), "code": code_digest(repo),
              "config_file": str(Path(config)), "run_dir": str(run)}  # fmt: skip
    (ref / "digest.json").write_text(json.dumps(digest, indent=2, sort_keys=True) + "\n")
    return ref


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otgap.paper.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keep", help="copy a finished run's summary tables with their digest")
    k.add_argument("run_dir")
    k.add_argument("ref_dir")
    k.add_argument("--config", required=True)
    c = sub.add_parser("check", help="is a kept reference current?")
    c.add_argument("ref_dir")
    c.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "keep":
        print(keep(args.run_dir, args.ref_dir, args.config))
        return 0
    ok, why = reference_status(args.ref_dir, args.config)
    print(why)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
