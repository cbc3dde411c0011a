"""The A.1 known-physics reference beside the learned models (rule systems_ode_a1_table).

For each fhn system and seed, the reference (systems_ode_a1_reference) predicted the first rollouts
from their last context state; every learned model of the same system, condition and seed is scored
on exactly those starts and rollout columns, from the rollout predictions fhn_evaluate kept.
Writes a1_reference/table.csv (one row per system, model, seed) and its booktabs table.
"""

import numpy as np
import pandas as pd

from otgap.analysis.ode_reference import TABLE_COLUMNS, learned_on_reference_window, window_errors
from otgap.io import read_json, read_npz, write_csv, write_json, write_text
from otgap.jobs import job
from otgap.tables.ode_solver import a1_reference_table
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = smk.params
    cells = list(p.cells)  # [{system, condition, seed}], in input order
    models = list(p.models)
    rows = []
    n_models = len(models)
    for i, cell in enumerate(cells):
        ref = read_npz(smk.input.predictions[i])
        info = read_json(smk.input.infos[i])
        data = read_npz(smk.input.data[i], required=("rollout_y", "attractor_std"))
        idx, cols = ref["rollout_index"], ref["columns"]
        if not np.array_equal(np.asarray(data["rollout_y"])[idx][:, cols], ref["true"]):
            raise ValueError(
                f"{smk.input.predictions[i]} was not made from {smk.input.data[i]}: "
                "its true values differ from the dataset's rollouts"
            )
        scale = np.asarray(data["attractor_std"], dtype=np.float64)
        common = {
            **cell,
            "n_starts": len(idx),
            "n_points": len(cols),
            "span": float(info["span"]),
        }
        rows.append(
            {
                **common,
                "model": "reference",
                "kind": "reference",
                **window_errors(ref["pred"], ref["true"], scale),
                "train_seconds": float(info["train_seconds"]),
                "n_params": int(info["n_params"]),
            }
        )
        for j, model in enumerate(models):
            k = i * n_models + j
            curves = read_npz(smk.input.curves[k], required=("rollout_pred",))
            run = read_json(smk.input.runs[k])
            rows.append(
                {
                    **common,
                    "model": model,
                    "kind": "learned",
                    **learned_on_reference_window(ref, curves["rollout_pred"], scale),
                    "train_seconds": float(run.get("wall_seconds", float("nan"))),
                    "n_params": int(run.get("n_params", 0)),
                }
            )
    frame = pd.DataFrame(rows)[list(TABLE_COLUMNS)]
    write_csv(smk.output.csv, frame)
    write_text(smk.output.tex, a1_reference_table(frame, models))
    write_json(
        smk.output.info,
        {
            "rows": len(frame),
            "inputs": [str(x) for x in smk.input.predictions],
            "provenance": provenance({"cells": cells, "models": models}),
        },
    )
    summary = frame.groupby(["system", "model"], sort=False)["rmse"].mean()
    log(summary.to_string())
