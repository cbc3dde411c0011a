"""Solve one built-in ODE problem with a trial-solution network (rule systems_ode_solve)."""

from otgap.io import write_json, write_npz
from otgap.jobs import job
from otgap.models.ode_solver import evaluate_problem, get_problem
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    problem = get_problem(s["problem"])
    scalars, arrays = evaluate_problem(problem, seed=int(s["seed"]), **dict(s["options"]))
    log(f"{problem.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in scalars.items()))
    timing = {k: scalars.pop(k) for k in ("train_seconds", "train_cpu_seconds")}
    write_npz(smk.output.solution, **arrays)
    write_json(smk.output.metrics, {"problem": problem.name, **scalars})
    write_json(
        smk.output.run_json,
        {
            "problem": problem.name,
            "description": problem.description,
            **timing,
            "provenance": provenance(s),
        },
    )
