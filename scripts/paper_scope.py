"""What was run and what it cost: the scope table, the cost table and their macros (rule
paper_scope), from the three configurations and the run's benchmark files."""

import json
from pathlib import Path

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.claims import project_configs
from otgap.paper.scope import (
    cost_table,
    hardware_text,
    minutes_text,
    provenance_entries,
    provenance_table,
    read_benchmarks,
    run_cost,
    scope_macros,
    scope_rows,
    scope_table,
)

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = smk.params
    configs = project_configs(p.config_dir)
    this = p.config
    rows = scope_rows(this, configs["config"], configs["original"])
    cost = run_cost(read_benchmarks(p.benchmarks))
    device = None
    if Path(smk.input.device).is_file():
        device = (json.loads(Path(smk.input.device).read_text()).get("provenance") or {}).get(
            "device"
        )
    rows += [
        ("Machine", hardware_text(device), "--", "--"),
        (
            "Run time",
            f"{cost['n_jobs']} jobs, {minutes_text(cost['wall_s'])} min summed wall time",
            "planned by make plan (docs/costs.md)",
            "--",
        ),
    ]
    write_text(smk.output.table, scope_table(rows, this_run=this["run"], caption=(
        "What was run: this run's settings beside the paper-scale configuration "
        "(\\texttt{config/config.yaml}) and the original code's settings "
        "(\\texttt{config/original.yaml}; keys the original code has no counterpart for are those "
        "of \\texttt{config/config.yaml}). Written by rule \\texttt{paper\\_scope} from the "
        "configurations.")))  # fmt: skip
    write_text(smk.output.cost, cost_table(cost, caption=(
        "Computational cost of this run per stage, summed over its jobs from their Snakemake "
        "benchmark files (\\texttt{logs/<run>/benchmarks}; the paper's own jobs excluded). "
        "Wall times are summed over jobs, so the elapsed time on $k$ cores is at least the total "
        "over $k$.")))  # fmt: skip
    write_text(
        smk.output.macros,
        scope_macros(this, cost, device).render("scope and cost of the run (rule paper_scope)"),
    )
    entries = provenance_entries(dict(getattr(p, "makers", {}) or {}), getattr(p, "results", None))
    write_text(smk.output.provenance, provenance_table(entries))
    log(f"{len(entries)} sidecars in the provenance table")
    log(f"{cost['n_jobs']} benchmark files, {cost['wall_s']:.0f} s summed wall time")
