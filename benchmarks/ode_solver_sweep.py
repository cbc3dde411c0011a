"""Sweep behind the error-control defaults of ``solve_ode`` (docs/ode_solver.md).

Usage: python benchmarks/ode_solver_sweep.py CONFIGS OUT.jsonl [PROBLEMS] [SEEDS]
CONFIGS is a JSON list of [label, {solve_ode options}]; PROBLEMS a comma-separated list of
built-in problems (default decay,logistic,fhn,vdp); SEEDS comma-separated (default 0-4). Every
solve runs with on_failure="flag" and appends one JSON line: the options, the problem, the seed,
the scalars of ``evaluate_problem`` (max abs error against the reference, the solver's estimate,
failed, windows, rejected windows, seconds) and the process CPU seconds of the solve.
"""

import json
import sys
import time

from otgap.models.ode_solver import evaluate_problem, get_problem

configs = json.loads(sys.argv[1])
problems = sys.argv[3].split(",") if len(sys.argv) > 3 else ["decay", "logistic", "fhn", "vdp"]
seeds = [int(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 else list(range(5))
with open(sys.argv[2], "a") as out:
    for label, options in configs:
        for name in problems:
            for seed in seeds:
                cpu = time.process_time()
                scalars, _ = evaluate_problem(
                    get_problem(name), seed=seed, on_failure="flag", **options
                )
                row = {"config": label, "options": options, "problem": name, "seed": seed}
                row.update(scalars, cpu=time.process_time() - cpu)
                out.write(json.dumps(row) + "\n")
                out.flush()
