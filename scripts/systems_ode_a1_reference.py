"""Known-physics reference of A.1 for one system and seed (rule systems_ode_a1_reference).

The rule passes one dataset: the (system, seed) under A.1's focus condition (rollout grids follow
each condition's jitter). Given several, the script checks that they share their rollouts. It then
solves the first rollouts from their last context state.
"""

import numpy as np

from otgap.analysis.ode_reference import REQUIRED_KEYS, a1_reference
from otgap.io import read_npz, write_json, write_npz
from otgap.jobs import job
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    paths = list(smk.input.data)
    data = read_npz(paths[0], required=REQUIRED_KEYS)
    for other in paths[1:]:
        d = read_npz(other, required=("rollout_t", "rollout_y"))
        if not (
            np.array_equal(d["rollout_t"], data["rollout_t"])
            and np.array_equal(d["rollout_y"], data["rollout_y"])
        ):
            raise ValueError(
                f"rollouts of {other} differ from those of {paths[0]}: the reference is built per "
                "(system, seed) and needs every condition to share its rollouts"
            )
    arrays, info = a1_reference(
        data,
        s["system"],
        s["system_params"],
        n_starts=int(s["n_starts"]),
        periods=float(s["periods"]),
        seed=int(s["seed"]),
        **dict(s["options"]),
    )
    log(", ".join(f"{k}={v}" for k, v in info.items()))
    write_npz(smk.output.predictions, **arrays)
    write_json(smk.output.info, {**info, "datasets": paths, "provenance": provenance(s)})
