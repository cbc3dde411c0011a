"""Train one sequence model on one FitzHugh-Nagumo dataset (rule fhn_train)."""

from functools import partial

import pandas as pd
import torch

from otgap.data.fhn import vector_field
from otgap.deps import job_identity
from otgap.io import read_npz, write_csv, write_json
from otgap.jobs import job
from otgap.models.sequence import build_sequence_model
from otgap.train.determinism import seed_everything
from otgap.train.loop import clear_checkpoint
from otgap.train.provenance import provenance
from otgap.train.sequence import FitConfig, fit_sequence_model, save_sequence_model, split_tensors

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    name, seed = s["model"], int(s["seed"])
    data = read_npz(smk.input.data)
    model_kwargs = {"hidden": int(s["hidden"]), **dict(s["model_kwargs"])}
    seed_everything(seed)
    model = build_sequence_model(name, **model_kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    cfg = FitConfig(
        epochs=int(s["epochs"]),
        batch_size=int(s["batch_size"]),
        lr=float(s["lr"]),
        grad_clip=s["grad_clip"],
        plateau_factor=float(s["plateau_factor"]),
        plateau_patience=s["plateau_patience"],
        eval_every_epochs=int(s["eval_every"]),
        checkpoint_every_epochs=int(s["checkpoint_every"]),
    )
    train = split_tensors(data, "train")
    log(f"{name}: {n_params} parameters, {train[0].shape[0]} training sequences of "
        f"{train[0].shape[1]} points, fit_target={model.fit_target}, baseline={model.is_baseline}")
    # The true field is only used by models whose fit_target is "vector_field" (the oracle).
    device = s["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    true_field = partial(vector_field, system=s["system"], params=dict(s["system_params"]))
    result = fit_sequence_model(
        model,
        train,
        cfg,
        seed=seed,
        val=split_tensors(data, "val"),
        true_field=true_field,
        checkpoint_dir=smk.params.checkpoint_dir,
        log=log,
        label=f"fhn/{s['system']}/{s['condition']}/{name}/seed={seed}",
        device=device,
        # the checkpoint is resumed only by a job with the same settings and code
        identity=job_identity({"settings": s}, smk.input.code),
    )
    model.cpu()
    save_sequence_model(smk.output.model, name, model_kwargs, model)
    history = pd.DataFrame(result.history if result is not None else [], columns=None)
    write_csv(smk.output.history, history)
    summary = {
        "n_params": n_params,
        "baseline": model.is_baseline,
        "fit_target": model.fit_target,
        "steps_done": result.steps_done if result else 0,
        "diverged": result.diverged if result else False,
        "diverged_step": result.diverged_step if result else None,
        "resumed_from": result.resumed_from if result else None,
        "wall_seconds": result.wall_seconds if result else 0.0,
        "device": device,
        "final_val_loss": float(history["val_loss"].iloc[-1]) if "val_loss" in history else None,
    }
    log(f"done: {summary}")
    write_json(smk.output.run_json, {**summary, "provenance": provenance(s)})
    clear_checkpoint(smk.params.checkpoint_dir)
