# Edge of Stability (Appendix A.2): MedMNIST download and one training job per
# (dataset, model, optimizer, lr, loss, seed), with sharpness tracked along the way.
# Outputs: {R}/eos/dataset=/model=/optimizer=/lr=/loss=/seed=/{history.csv,snapshots.npz,model.pt,run.json}
import inspect
import re

import medmnist

from otgap.losses import LOSSES
from otgap.models.classifiers import CLASSIFIERS
from otgap.optim import OPTIMIZERS, format_lr, parse_lr

EOS = config["eos"]
EOS_MEDMNIST_ROOT = f"{config['data']['root']}/medmnist"
EOS_TAIL = "dataset={dataset}/model={model}/optimizer={optimizer}/lr={lr}/loss={loss}/seed={seed}"
EOS_OUTPUTS = ("history.csv", "snapshots.npz", "model.pt", "run.json")
EOS_MEDMNIST_SIZES = (28, 64, 128, 224)


def eos_entry_axes(entry):
    """Models, losses and seeds one optimizer entry runs with: its own lists where it gives
    them (e.g. a Langevin entry that runs only the Landau models with the landau loss), the
    eos-wide ones otherwise."""
    return {
        axis: list(entry.get(axis, EOS[axis])) for axis in ("models", "losses", "seeds")
    }


def _eos_union(axis):
    """Every value of ``axis`` that some entry runs with, eos-wide ones first, in order."""
    out = list(EOS[axis])
    for entry in EOS["optimizers"]:
        out += [v for v in entry.get(axis, []) if v not in out]
    return out


def _eos_check_config():
    """Names, per-optimizer training lengths and hyperparameter names, checked before any job."""
    entries = {}
    for i, entry in enumerate(EOS["optimizers"]):
        name, where = entry["name"], f"eos.optimizers[{i}]"
        if name in entries:
            raise WorkflowError(
                f"{where}: optimizer '{name}' is listed twice; merge its lrs"
            )
        if name not in OPTIMIZERS:
            raise WorkflowError(
                f"{where}.name: unknown optimizer '{name}'; known: {sorted(OPTIMIZERS)}"
            )
        spec = OPTIMIZERS[name]
        need = ("steps",) if spec.full_batch else ("epochs", "batch_size")
        missing = [k for k in need if k not in entry]
        if missing:
            kind = "full-batch" if spec.full_batch else "minibatch"
            raise WorkflowError(
                f"{where}: the {kind} optimizer '{name}' needs {missing}"
            )
        try:
            spec.hyper(**entry.get("hyper", {}))
        except ValueError as exc:
            raise WorkflowError(f"{where}.hyper: {exc}") from None
        if (
            spec.full_batch
            and "eig_subset" in entry
            and entry["eig_subset"] != EOS["gd_train_subset"]
        ):
            raise WorkflowError(
                f"{where}.eig_subset: {entry['eig_subset']} differs from eos.gd_train_subset "
                f"({EOS['gd_train_subset']}): the full-batch optimizer '{name}' must be measured "
                "on the loss it descends; drop eig_subset from this entry"
            )
        eval_every = entry.get("eval_every", EOS["eval_every"])
        eig_every = entry.get("eig_every", EOS["eig_every"])
        # 'epoch' is resolved in the job (it needs the data set's size); integers are checked here.
        if (
            isinstance(eval_every, int)
            and isinstance(eig_every, int)
            and eig_every % eval_every
        ):
            raise WorkflowError(
                f"{where}: eig_every ({eig_every}) must be a multiple of eval_every ({eval_every})"
            )
        entries[name] = entry
    for d in EOS["datasets"]:
        if d != "digits" and (d not in medmnist.INFO or d.endswith("3d")):
            raise WorkflowError(
                f"eos.datasets: '{d}' is neither 'digits' nor a MedMNIST 2D flag"
            )
    for i, entry in enumerate(EOS["optimizers"]):
        where = f"eos.optimizers[{i}]"
        for m in entry.get("models", []):
            if m not in CLASSIFIERS:
                raise WorkflowError(
                    f"{where}.models: unknown model '{m}'; known: {sorted(CLASSIFIERS)}"
                )
        for loss in entry.get("losses", []):
            if loss not in LOSSES:
                raise WorkflowError(
                    f"{where}.losses: unknown loss '{loss}'; known: {sorted(LOSSES)}"
                )
    for m in EOS["models"]:
        if m not in CLASSIFIERS:
            raise WorkflowError(
                f"eos.models: unknown model '{m}'; known: {sorted(CLASSIFIERS)}"
            )
    for loss in EOS["losses"]:
        if loss not in LOSSES:
            raise WorkflowError(
                f"eos.losses: unknown loss '{loss}'; known: {sorted(LOSSES)}"
            )
    for m, hyper in EOS["model_hyper"].items():
        if m not in CLASSIFIERS:
            raise WorkflowError(
                f"eos.model_hyper: unknown model '{m}'; known: {sorted(CLASSIFIERS)}"
            )
        accepted = set(inspect.signature(CLASSIFIERS[m]).parameters) - {
            "input_shape",
            "n_classes",
        }
        unknown = sorted(set(hyper) - accepted)
        if unknown:
            raise WorkflowError(
                f"eos.model_hyper.{m}: unknown key(s) {unknown}; known: {sorted(accepted)}"
            )
    return entries


EOS_OPTIMIZERS = _eos_check_config()
EOS_MODELS = _eos_union("models")
EOS_LOSSES = _eos_union("losses")


def _alternatives(names):
    return "|".join(re.escape(str(n)) for n in sorted(names))


def eos_runs():
    """The grid: datasets x models x losses x seeds x (optimizer, lr) pairs, each optimizer with
    its own learning rates and (where the entry lists them) its own models, losses and seeds.
    lr values are formatted with format_lr, as in the paths."""
    axes = {entry["name"]: eos_entry_axes(entry) for entry in EOS["optimizers"]}
    return [
        {
            "dataset": d,
            "model": m,
            "optimizer": entry["name"],
            "lr": format_lr(lr),
            "loss": loss,
            "seed": seed,
        }
        for d in EOS["datasets"]
        for m in EOS_MODELS
        for loss in EOS_LOSSES
        for entry in EOS["optimizers"]
        if m in axes[entry["name"]]["models"] and loss in axes[entry["name"]]["losses"]
        for lr in entry["lrs"]
        for seed in axes[entry["name"]]["seeds"]
    ]


def eos_run_dir(run):
    """Result folder of one run (a dict with the eos_runs keys)."""
    return f"{R}/eos/" + EOS_TAIL.format(**run)


def eos_train_targets():
    return [f"{eos_run_dir(run)}/{name}" for run in eos_runs() for name in EOS_OUTPUTS]


def eos_medmnist_file(flag):
    size = EOS["size"]
    return (
        f"{EOS_MEDMNIST_ROOT}/{flag}.npz"
        if size == 28
        else f"{EOS_MEDMNIST_ROOT}/{flag}_{size}.npz"
    )


def eos_data_input(wildcards):
    if wildcards.dataset == "digits":
        return []
    return [ancient(eos_medmnist_file(wildcards.dataset))]


def eos_data_params(wildcards):
    if wildcards.dataset == "digits":
        return {"name": "digits"}
    return {
        "name": wildcards.dataset,
        "size": EOS["size"],
        "root": EOS_MEDMNIST_ROOT,
        "medmnist_md5": config["data"]["medmnist_md5"],
    }


def eos_settings(wildcards):
    """Keyword arguments of otgap.train.eos.EosSettings for one job."""
    entry = EOS_OPTIMIZERS[wildcards.optimizer]
    lr = parse_lr(wildcards.lr)
    return {
        "model": wildcards.model,
        "optimizer": wildcards.optimizer,
        "lr": lr,
        "loss": wildcards.loss,
        "seed": int(wildcards.seed),
        "model_hyper": dict(EOS["model_hyper"].get(wildcards.model, {})),
        "optimizer_hyper": dict(entry.get("hyper", {})),
        "steps": entry.get("steps", 0),
        "eig_method": EOS["eig_method"],
        "subset": EOS["subset"],
        "subset_seed": EOS["subset_seed"],
        "device": EOS["device"],
        "deterministic": EOS["deterministic"],
        "epochs": entry.get("epochs", 0),
        "batch_size": entry.get("batch_size", 1),
        "gd_train_subset": EOS["gd_train_subset"],
        "eval_every": entry.get("eval_every", EOS["eval_every"]),
        "eig_every": entry.get("eig_every", EOS["eig_every"]),
        # full-batch runs measure on their training subset (None); minibatch runs on eig_subset
        "eig_subset": (
            None
            if OPTIMIZERS[wildcards.optimizer].full_batch
            else entry.get("eig_subset", EOS["eig_subset"])
        ),
        "eig_k": EOS["eig_k"],
        # batch sharpness only where it decides stability (minibatch sgd/momentum)
        "batch_sharpness_batches": (
            entry.get("batch_sharpness_batches", EOS["batch_sharpness_batches"])
            if OPTIMIZERS[wildcards.optimizer].batch_sharpness
            and not OPTIMIZERS[wildcards.optimizer].full_batch
            else 0
        ),
        "eig_tol": EOS["eig_tol"],
        "eig_max_iter": EOS["eig_max_iter"],
        "n_snapshots": EOS["n_snapshots"],
        "checkpoint_every": entry.get("checkpoint_every", EOS["checkpoint_every"]),
    }


def eos_checkpoint_dir(wildcards):
    keys = ("dataset", "model", "optimizer", "lr", "loss", "seed")
    return f"{CKPT}/eos/" + EOS_TAIL.format(**{k: getattr(wildcards, k) for k in keys})


def eos_download_params(wildcards):
    """Flag and image size of a MedMNIST file name stem: pathmnist -> 28, pathmnist_64 -> 64."""
    flag, _, size = wildcards.medmnist_file.partition("_")
    return {"flag": flag, "size": int(size) if size else 28}


localrules:
    eos_download,


# No library sources as inputs: editing code must not delete and re-fetch the data; jobs that
# read the file take it as ancient(), so a re-fetched identical file does not rerun them.
# update(): Snakemake never deletes an existing file here (a forced rerun keeps a verified one;
# the script moves a wrong one aside to <name>.bad).
rule eos_download:
    output:
        npz=update(f"{EOS_MEDMNIST_ROOT}/{{medmnist_file}}.npz"),
    log:
        f"{L}/data/medmnist/{{medmnist_file}}.log",
    wildcard_constraints:
        medmnist_file="("
        + _alternatives(f for f in medmnist.INFO if not f.endswith("3d"))
        + ")"
        + "(_("
        + "|".join(str(s) for s in EOS_MEDMNIST_SIZES[1:])
        + "))?",
    threads: 1
    resources:
        **res("default"),
    params:
        medmnist=eos_download_params,
        md5=config["data"]["medmnist_md5"],
        timeout=120,
    script:
        "../../scripts/eos_download.py"


rule eos_train:
    input:
        **script_inputs("scripts/eos_train.py", data=eos_data_input),
    output:
        history=f"{R}/eos/{EOS_TAIL}/history.csv",
        snapshots=f"{R}/eos/{EOS_TAIL}/snapshots.npz",
        model=f"{R}/eos/{EOS_TAIL}/model.pt",
        run_json=f"{R}/eos/{EOS_TAIL}/run.json",
    log:
        f"{L}/eos/{EOS_TAIL}/train.log",
    benchmark:
        f"{L}/benchmarks/eos/{EOS_TAIL}/train.tsv"
    wildcard_constraints:
        dataset=_alternatives(EOS["datasets"]),
        model=_alternatives(EOS_MODELS),
        optimizer=_alternatives(EOS_OPTIMIZERS),
        lr=r"[0-9][0-9.e+-]*",
        loss=_alternatives(EOS_LOSSES),
        seed=r"\d+",
    threads: threads_for("eos_train")
    resources:
        **res("eos_train"),
    params:
        settings=eos_settings,
        data=eos_data_params,
        checkpoint_dir=eos_checkpoint_dir,
    script:
        "../../scripts/eos_train.py"
