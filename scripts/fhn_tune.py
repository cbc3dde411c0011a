"""Choose one A.1 cell's learning rate on validation data (rule fhn_tune; otgap.train.tuning):
the model trained at each lr of the grid on the tuning seeds' datasets (train and validation
splits only), the choice written for the cell's training job."""

from functools import partial
from pathlib import Path

import torch

from otgap.data.fhn import vector_field
from otgap.deps import code_digests, job_identity
from otgap.io import read_npz, write_json
from otgap.jobs import job
from otgap.train.loop import clear_checkpoint
from otgap.train.provenance import provenance
from otgap.train.sequence import fit_config
from otgap.train.tuning import tune_cell

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    tuning = dict(s.pop("tuning"))
    name, seeds = s["model"], [int(x) for x in tuning["seeds"]]
    model_kwargs = {"hidden": int(s["hidden"]), **dict(s["model_kwargs"])}
    cfg = fit_config({**s, "lr": float(tuning["lr_grid"][0])})  # each grid value replaces it
    device = s["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    true_field = partial(vector_field, system=s["system"], params=dict(s["system_params"]))
    data_digests = [code_digests([p])[p] for p in map(str, smk.input.data)]
    ident = job_identity({"settings": s, "tuning": tuning, "data": data_digests}, smk.input.code)
    ckpt = Path(smk.params.checkpoint_dir)
    result = tune_cell(
        name, model_kwargs, [read_npz(p) for p in smk.input.data], cfg, seeds,
        tuning["lr_grid"], max_extend=int(tuning["max_extend"]), true_field=true_field,
        checkpoint_dir=ckpt, identity=ident, log=log,
        label=f"fhn-tune/{s['system']}/{s['condition']}/{name}", device=device,
    )  # fmt: skip
    log(f"chosen lr {result['chosen_lr']:g} from {result['grid']} (extended {result['extended']})")
    write_json(
        smk.output.json,
        {
            "system": s["system"], "condition": s["condition"], "model": name, **result,
            "schedule": {k: s[k] for k in ("epochs", "patience", "plateau_patience",
                                           "plateau_factor", "grad_clip", "eval_every")},
            "provenance": provenance({**s, "tuning": tuning}),
        },
    )  # fmt: skip
    for sub in sorted(ckpt.glob("lr=*")):
        clear_checkpoint(sub)
