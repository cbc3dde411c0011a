"""Simulate one FitzHugh-Nagumo dataset with irregular observation masks (rule fhn_dataset)."""

from otgap.data.fhn import system_params
from otgap.data.fhn_dataset import Condition, DatasetSpec, build_dataset
from otgap.io import read_npz, write_json, write_npz
from otgap.jobs import job
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    system, seed = smk.wildcards.system, int(smk.wildcards.seed)
    condition = Condition(**smk.params.condition)
    spec = DatasetSpec(**smk.params.dataset, params=smk.params.params)
    props = read_npz(smk.input.lyapunov, required=("lyapunov", "attractor_std"))
    lam = float(props["lyapunov"])
    arrays = build_dataset(
        system,
        condition,
        seed,
        spec,
        lam,
        props["attractor_std"],
        orbit=props.get("attractor_orbit"),
        orbit_period=props.get("attractor_period"),
    )
    log(
        f"{system}/{condition.name}/seed {seed}: "
        f"{arrays['train_t'].shape[0]} train sequences of {arrays['train_t'].shape[1]} points, "
        f"observed fraction {arrays['train_obs'].mean():.2f}, lyapunov {lam:+.4f}"
    )
    write_npz(smk.output.npz, **arrays)
    job_params = {
        "system": system,
        "seed": seed,
        "condition": smk.params.condition,
        "dataset": smk.params.dataset,
        "params": smk.params.params,
    }
    meta = {
        **job_params,
        "system_params": system_params(system, smk.params.params),
        "lyapunov": lam,
        "keys": {k: list(v.shape) for k, v in arrays.items()},
        "provenance": provenance(job_params),
    }
    write_json(smk.output.meta, meta)
