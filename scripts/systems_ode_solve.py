"""Solve one built-in ODE problem from every seed, beside scipy (rule systems_ode_solve).

All seeds run in this one process (one job per problem, not per seed: each process costs its
imports). The classical solver (``CLASSICAL`` of otgap.models.ode_solver) solves the same
problem, timed, as the row a reader compares the networks' cost and error with.
"""

import numpy as np

from otgap.io import write_json, write_npz
from otgap.jobs import job
from otgap.models.ode_solver import SolverOptions, classical_solve, evaluate_seeds, get_problem
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    problem = get_problem(s["problem"])
    options = dict(s["options"])
    tol = SolverOptions.from_mapping(options).tol  # before any work: unknown keys fail here
    rows, arrays = evaluate_seeds(problem, s["seeds"], **options)
    for row in rows:
        log(f"{problem.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()))
    classical, classical_error = classical_solve(problem, n_eval=len(arrays["t"]))
    log(f"{problem.name} classical: {classical}")
    write_npz(smk.output.solution, classical_error=classical_error, **arrays)
    write_json(
        smk.output.metrics,
        {"problem": problem.name, "tol": tol, "seeds": rows, "classical": classical},
    )
    write_json(
        smk.output.run_json,
        {
            "problem": problem.name,
            "description": problem.description,
            "train_seconds": float(np.sum([r["train_seconds"] for r in rows])),
            "train_cpu_seconds": float(np.sum([r["train_cpu_seconds"] for r in rows])),
            "provenance": provenance(s),
        },
    )
