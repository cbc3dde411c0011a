"""Train one sequence model on the FitzHugh-Nagumo datasets of one (system, condition), every
configured seed in this one job (rule fhn_train; per-seed outputs). With ``batch_seeds`` (default)
the seeds train together as one batched computation (otgap.train.batched), else one after
another."""

from functools import partial
from pathlib import Path

import pandas as pd
import torch

from otgap.data.fhn import vector_field
from otgap.deps import code_digests, job_identity
from otgap.io import read_json, read_npz, write_csv, write_json
from otgap.jobs import job
from otgap.train.batched import SeedRun, train_seeds
from otgap.train.loop import clear_checkpoint, timing_marks
from otgap.train.provenance import provenance
from otgap.train.sequence import fit_config, save_sequence_model, train_seed

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    lr_source = "config"
    tuning = getattr(smk.input, "tuning", None)
    if tuning:  # fhn.train.tuning: the cell's lr chosen on validation data
        tuned = read_json(tuning)
        if tuned.get("model") != s["model"]:
            raise ValueError(f"{tuning} is for model '{tuned.get('model')}'")
        s["lr"], lr_source = float(tuned["chosen_lr"]), "tuned"
    name, seeds = s["model"], [int(x) for x in s["seeds"]]
    model_kwargs = {"hidden": int(s["hidden"]), **dict(s["model_kwargs"])}
    cfg = fit_config(s)
    device = s["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # The true field is only used by models whose fit_target is "vector_field" (the oracle).
    true_field = partial(vector_field, system=s["system"], params=dict(s["system_params"]))
    label = f"fhn/{s['system']}/{s['condition']}/{name}"
    ckpts = list(smk.params.checkpoint_dirs)
    # a checkpoint is resumed only by a job with the same settings and code
    # ... and the same data: each seed's dataset by content (a regenerated dataset is another job)
    data_digests = [code_digests([p])[p] for p in map(str, smk.input.data)]
    identities = [
        job_identity({"settings": s, "seed": seed, "data": digest}, smk.input.code)
        for seed, digest in zip(seeds, data_digests, strict=True)
    ]
    # batched: a seed's finished result is reused by a job of the same settings but more seeds
    own = {k: v for k, v in s.items() if k != "seeds"}
    seed_ids = [
        job_identity({"settings": own, "seed": seed, "data": digest}, smk.input.code)
        for seed, digest in zip(seeds, data_digests, strict=True)
    ]
    cell_ckpt = Path(ckpts[0]).parent / "batched_seeds"
    if s.get("batch_seeds", True):
        runs = train_seeds(
            name, model_kwargs, [read_npz(p) for p in smk.input.data], cfg, seeds,
            true_field=true_field, checkpoint_dir=cell_ckpt, seed_checkpoint_dirs=ckpts,
            identity=job_identity(
                {"settings": s, "batched": True, "data": data_digests}, smk.input.code
            ),
            seed_identities=seed_ids, log=log, label=label, device=device,
        )  # fmt: skip
    else:
        runs = []
        for seed, data_path, ckpt, ident in zip(
            seeds, smk.input.data, ckpts, identities, strict=True
        ):
            model, result = train_seed(
                name, model_kwargs, read_npz(data_path), cfg, seed,
                true_field=true_field, checkpoint_dir=ckpt, log=log, device=device,
                label=f"{label}/seed={seed}", identity=ident,
            )  # fmt: skip
            runs.append(SeedRun(seed, model, result, batched=False))
    outputs = zip(runs, smk.output.model, smk.output.history, smk.output.run_json, strict=True)
    for run, model_path, history_path, run_path in outputs:
        seed, model, result = run.seed, run.model, run.result
        save_sequence_model(model_path, name, model_kwargs, model)
        history = pd.DataFrame(result.history if result is not None else [])
        write_csv(history_path, history)
        extras = result.extras if result is not None else {}
        summary = {
            "seed": seed,
            "n_params": sum(p.numel() for p in model.parameters()),
            "baseline": model.is_baseline,
            "fit_target": model.fit_target,
            "objective": cfg.objective,
            "keep": cfg.keep,
            "steps_done": result.steps_done if result else 0,
            "stopped_epoch": extras.get("stopped_epoch"),
            # the convergence check's inputs: the epoch bound and the lr this run trained at
            "epoch_bound": cfg.epochs,
            "lr": cfg.lr,
            "lr_source": lr_source,
            "best_epoch": extras.get("best_epoch"),
            "best_val_loss": extras.get("best_val_loss"),
            "diverged": result.diverged if result else False,
            "diverged_step": result.diverged_step if result else None,
            "resumed_from": result.resumed_from if result else None,
            # batched: this seed's share of the cell's wall time (the cell's: batched_wall_seconds)
            "wall_seconds": result.wall_seconds if result else 0.0,
            "batched": run.batched,
            "batched_wall_seconds": extras.get("cell_wall_seconds"),
            # (step, loop seconds) after the first evaluations and the last (batched: the cell's)
            "loop_marks": timing_marks(result.marks) if result else [],
            "reused": run.reused,  # kept from an earlier job with the same seed identity
            "device": device,
            "final_val_loss": float(history["val_loss"].iloc[-1])
            if "val_loss" in history
            else None,
        }
        log(f"seed {seed} done: {summary}")
        write_json(run_path, {**summary, "provenance": provenance({**s, "seed": seed})})
    for ckpt in [*ckpts, cell_ckpt]:
        clear_checkpoint(ckpt)
