"""Figure, errors.csv and booktabs table of the ODE-solving networks (rule systems_ode_report):
per problem, the networks over every seed (median and worst error, worst seed, failures) and the
classical solver's row."""

import pandas as pd

from otgap.io import read_json, read_npz, write_csv, write_text
from otgap.jobs import job
from otgap.models.ode_solver import get_problem
from otgap.plots.ode_solver import ode_solver_figure
from otgap.plots.style import plt, save_figure
from otgap.tables.ode_solver import COLUMNS, errors_table, summary_rows

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    problems = list(smk.params.problems)
    rows, arrays, tols = [], {}, {}
    files = zip(problems, smk.input.solutions, smk.input.metrics, strict=True)
    for name, solution, metrics in files:
        m = read_json(metrics)
        if m["problem"] != name:
            raise ValueError(f"{metrics} holds problem '{m['problem']}', expected '{name}'")
        rows += summary_rows(m)
        tols[name] = m["tol"]
        arrays[name] = read_npz(solution)
    frame = pd.DataFrame(rows)[list(COLUMNS)]
    write_csv(smk.output.csv, frame)
    write_text(smk.output.tex, errors_table(frame))
    descriptions = {name: get_problem(name).description for name in problems}
    fig = ode_solver_figure(problems, arrays, descriptions, tols)
    save_figure(fig, smk.output.pdf, smk.output.png)
    plt.close(fig)
    log(frame.to_string(index=False))
