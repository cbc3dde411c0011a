"""Train one (model, optimizer) entry of the Landau comparison over its seeds (rule
systems_landau_train)."""

import pandas as pd

from otgap.data.mnist import load_mnist
from otgap.data.toy2d import load_digits_unit
from otgap.io import write_csv, write_json
from otgap.jobs import job
from otgap.train.landau import LandauRun, train_landau_run
from otgap.train.provenance import provenance


def load(data: dict):
    if data["name"] == "digits":
        return load_digits_unit(n_train=data["n_train"])
    if data["name"] == "mnist":  # inputs in [0, 1] already
        return load_mnist(data["root"], download=False)
    raise ValueError(f"systems.landau.dataset: unknown data set '{data['name']}'")


with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    params = dict(smk.params.settings)
    seeds = params.pop("seeds")
    data = load(dict(smk.params.data))
    log(f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test, {data.input_shape}")
    histories, summaries = [], []
    for seed in seeds:
        history, summary = train_landau_run(data, LandauRun(seed=seed, **params), log=log)
        histories.append(history.assign(seed=seed))
        summaries.append(summary)
    runs = pd.DataFrame(summaries)
    # wall time is the only number that differs between identical runs: kept in its own file
    write_csv(smk.output.timing, runs[["model", "optimizer", "seed", "wall_s"]])
    write_csv(smk.output.runs, runs.drop(columns=["wall_s"]))
    write_csv(smk.output.history, pd.concat(histories, ignore_index=True))
    write_json(
        smk.output.run_json,
        provenance({"settings": smk.params.settings, "data": smk.params.data}),
    )
    log(", ".join(f"seed {s['seed']}: test acc {s['test_acc']:.4f}" for s in summaries))
