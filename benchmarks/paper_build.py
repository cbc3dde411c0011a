"""What the paper stage adds to a finished run, against its budget of 45 s on `make quick`.

Usage::

    .venv/bin/python benchmarks/paper_build.py [--configfile config/quick.yaml] [--cores 2]

Needs a finished run of that config (e.g. `make quick`). Forces the paper rules only
(paper_fhn, paper_eos, paper_settings, paper_compare, paper_system, paper_pdf; nothing upstream)
and times: the whole Snakemake call (parse, DAG, jobs) and a dry run of the same call (parse and
DAG only), so their difference is what the paper jobs add. Printed: both times, the difference,
the latexmk time alone (rule paper_pdf's benchmark file) and the ratio of the added time to 45 s.
The paper's outputs are rebuilt in place (same inputs, same bytes).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 45.0
RULES = ["paper_fhn", "paper_eos", "paper_settings", "paper_compare", "paper_pdf"]


def snakemake(configfile: str, cores: int, *extra: str) -> float:
    cmd = [
        str(Path(sys.executable).with_name("snakemake")),
        "--profile",
        "profiles/default",
        "--configfile",
        configfile,
        "--cores",
        str(cores),
        *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/quick.yaml")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    run = yaml.safe_load((REPO / args.configfile).read_text())["run"]
    target = f"results/{run}/paper/main.pdf"
    if not (REPO / target).is_file():
        sys.exit(f"{target} does not exist: run the workflow with {args.configfile} first")
    force = ["--forcerun", *RULES, "--until", "paper_pdf", target]
    dry = snakemake(args.configfile, args.cores, "-n", *force)
    full = snakemake(args.configfile, args.cores, *force)
    bench = REPO / "logs" / run / "benchmarks" / "paper" / "pdf.tsv"
    latex = float(next(csv.DictReader(bench.open(), delimiter="\t"))["s"])
    added = full - dry
    print(f"snakemake with the paper jobs: {full:.1f} s; dry run of the same call: {dry:.1f} s")
    print(f"added by the paper jobs: {added:.1f} s (rule paper_pdf alone: {latex:.1f} s)")
    print(f"ratio to the {BUDGET_S:.0f} s budget: {added / BUDGET_S:.2f}")


if __name__ == "__main__":
    main()
