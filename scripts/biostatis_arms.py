"""Extra BiostatisV6/AdamW arms beside the EoS grid's runs (rule biostatis_arms): the lr-matched
AdamW arm (lr from the matched-lr file) or the lr sweep, every seed, trained and scored without
curvature analysis; the settings of each run are the EoS run's of the same optimizer and seed."""

import pandas as pd

from otgap.analysis.biostatis import arm_settings
from otgap.analysis.eos import load_run_data
from otgap.io import read_json, write_csv, write_json
from otgap.jobs import job
from otgap.tables.biostatis import run_record
from otgap.train.eos import EosSettings, train_eos
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    base = {}  # (optimizer, seed) -> the EoS run's run.json
    for path in smk.input.base:
        info = read_json(path)
        base[(info["settings"]["optimizer"], int(info["settings"]["seed"]))] = info
    matched = read_json(smk.input.matched) if "matched" in smk.input.keys() else None
    data = load_run_data(next(iter(base.values())))
    records, histories = [], []
    for arm in smk.params.arms:
        opt = arm["optimizer"]
        if arm["lr"] == "matched":
            if matched is None:
                raise ValueError("biostatis_arms: a matched arm needs the matched-lr file")
            lr = float(matched["matched_lr"])
        else:
            lr = float(arm["lr"])
        for seed in smk.params.seeds:
            info = base.get((opt, int(seed)))
            if info is None:
                raise KeyError(
                    f"biostatis_arms: no EoS run.json of optimizer '{opt}' seed {seed} to take the "
                    "settings from; eos.optimizers needs that entry with these seeds"
                )
            settings = EosSettings.from_params(arm_settings(info["settings"], opt, lr))
            result = train_eos(data, settings)
            run = {
                "dataset": info["dataset"],
                "model": settings.model,
                "optimizer": opt,
                "lr": lr,
                "loss": settings.loss,
                "seed": int(seed),
            }
            rec = run_record(run, result.history, result.summary, result.state_dict)
            rec["arm"] = smk.wildcards.arms
            rec["matched_to"] = (
                f"biostatis lr={matched['v6_lr']:g}" if arm["lr"] == "matched" else ""
            )
            records.append(rec)
            histories.append(
                result.history[
                    ["step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
                ].assign(arm=smk.wildcards.arms, optimizer=opt, lr=lr, seed=int(seed))
            )
            log(f"{opt} lr={lr:.6g} seed {seed}: test acc {rec['test_acc']:.2f} %")
    write_csv(smk.output.runs, pd.DataFrame.from_records(records))
    write_csv(smk.output.history, pd.concat(histories, ignore_index=True))
    write_json(
        smk.output.run_json,
        provenance(
            {"arms": list(smk.params.arms), "seeds": list(smk.params.seeds)},
            matched_lr=matched,
        ),
    )
