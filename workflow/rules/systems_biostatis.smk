# BiostatisV6 beside AdamW, from the EoS grid's runs (eos.smk): one table with mean +- std
# over seeds, the paired accuracy test, time and optimizer-state memory ratios and the
# representation metrics of the last linear layer, with the authors' claimed numbers beside.
# Outputs: {R}/aggregate/biostatis/runs.csv, {R}/tables/biostatis/comparison.{csv,tex}
BIOSTATIS_OPTIMIZERS = ("biostatis", "biostatis_dynamo")


def biostatis_runs():
    """EoS runs of AdamW and the BiostatisV6 classes, in eos_runs() order."""
    wanted = {"adamw", *BIOSTATIS_OPTIMIZERS}
    return [run for run in eos_runs() if run["optimizer"] in wanted]


def _biostatis_check():
    """True when the grid has a BiostatisV6 entry; then AdamW must share one of its seeds."""
    runs = biostatis_runs()
    ours = [r for r in runs if r["optimizer"] in BIOSTATIS_OPTIMIZERS]
    if not ours:
        return False
    base_seeds = {r["seed"] for r in runs if r["optimizer"] == "adamw"}
    if not base_seeds & {r["seed"] for r in ours}:
        raise WorkflowError(
            "eos.optimizers: BiostatisV6 is compared with AdamW seed by seed; add an 'adamw' "
            "entry with the same seeds as the 'biostatis' entries"
        )
    return True


BIOSTATIS_ENABLED = _biostatis_check()


def biostatis_targets():
    if not BIOSTATIS_ENABLED:
        return []
    return [
        f"{R}/tables/biostatis/comparison.tex",
        f"{R}/tables/biostatis/comparison.csv",
        f"{R}/figures/biostatis/curves.png",
    ]


def _biostatis_files(name):
    return [f"{eos_run_dir(run)}/{name}" for run in biostatis_runs()]


# ---- arms that can show a difference (systems.biostatis; docs/systems.md) ---------------------
# The lr-matched AdamW arm (lr = V6's lr x V6's recorded mean gain, rule biostatis_matched_lr) and
# an lr sweep of both optimizers, every seed that V6 and AdamW share, with the EoS runs' settings
# and no curvature analysis. Outputs: {R}/aggregate/biostatis/matched_lr.json,
# {R}/systems/biostatis/arms={matched,sweep}/{runs.csv,history.csv,run.json}.
BIO_ARMS = config["systems"]["biostatis"]


def _v6_runs():
    """The EoS grid's hierarchical BiostatisV6 runs of its first (dataset, model, loss, lr)."""
    runs = [r for r in biostatis_runs() if r["optimizer"] == "biostatis"]
    if not runs:
        return []
    first = runs[0]
    keys = ("dataset", "model", "loss", "lr")
    return [r for r in runs if all(r[k] == first[k] for k in keys)]


def _arm_group():
    v6 = _v6_runs()
    return {k: v6[0][k] for k in ("dataset", "model", "loss")} if v6 else {}


def _arm_seeds():
    group = _arm_group()
    adamw = {
        r["seed"]
        for r in biostatis_runs()
        if r["optimizer"] == "adamw" and all(r[k] == v for k, v in group.items())
    }
    return sorted({r["seed"] for r in _v6_runs()} & adamw)


def _arm_base_runs():
    """One EoS run per (optimizer in adamw/biostatis, shared seed) to take settings from."""
    group, seeds, out, seen = _arm_group(), set(_arm_seeds()), [], set()
    for r in biostatis_runs():
        key = (r["optimizer"], r["seed"])
        if r["optimizer"] not in ("adamw", "biostatis") or r["seed"] not in seeds:
            continue
        if key in seen or not all(r[k] == v for k, v in group.items()):
            continue
        seen.add(key)
        out.append(r)
    return out


def _arm_sets():
    if not BIOSTATIS_ENABLED or not _arm_seeds():
        return {}
    group = _arm_group()
    in_grid = {
        (r["optimizer"], float(r["lr"]))
        for r in biostatis_runs()
        if all(r[k] == v for k, v in group.items())
    }
    sets = {}
    if BIO_ARMS["matched"]:
        sets["matched"] = [{"optimizer": "adamw", "lr": "matched"}]
    sweep = [
        {"optimizer": opt, "lr": float(lr)}
        for opt in ("biostatis", "adamw")
        for lr in BIO_ARMS["sweep_lrs"]
        if (opt, float(lr)) not in in_grid
    ]
    if sweep:
        sets["sweep"] = sweep
    return sets


BIO_ARM_SETS = _arm_sets()


def biostatis_arm_files():
    return [f"{R}/systems/biostatis/arms={a}/runs.csv" for a in BIO_ARM_SETS]


def _arms_inputs(wildcards):
    files = {"base": [f"{eos_run_dir(r)}/run.json" for r in _arm_base_runs()]}
    if wildcards.arms == "matched":
        files["matched"] = f"{R}/aggregate/biostatis/matched_lr.json"
    dataset = _arm_group().get("dataset", "digits")
    if dataset != "digits":
        files["data"] = ancient(eos_medmnist_file(dataset))
    return files


rule biostatis_table:
    input:
        **script_inputs("scripts/biostatis_table.py"),
        history=_biostatis_files("history.csv"),
        run_json=_biostatis_files("run.json"),
        model=_biostatis_files("model.pt"),
        arms=biostatis_arm_files(),
    output:
        runs=f"{R}/aggregate/biostatis/runs.csv",
        csv=f"{R}/tables/biostatis/comparison.csv",
        tex=f"{R}/tables/biostatis/comparison.tex",
        curves_pdf=f"{R}/figures/biostatis/curves.pdf",
        curves_png=f"{R}/figures/biostatis/curves.png",
    log:
        f"{L}/tables/biostatis/comparison.log",
    threads: 1
    resources:
        **res("default"),
    params:
        runs=biostatis_runs(),
        margin=BIO_ARMS["margin"],
    script:
        "../../scripts/biostatis_table.py"


rule biostatis_matched_lr:
    input:
        **script_inputs("scripts/biostatis_matched_lr.py"),
        v6=[f"{eos_run_dir(r)}/run.json" for r in _v6_runs()],
    output:
        json=f"{R}/aggregate/biostatis/matched_lr.json",
    log:
        f"{L}/aggregate/biostatis/matched_lr.log",
    threads: 1
    resources:
        **res("default"),
    script:
        "../../scripts/biostatis_matched_lr.py"


rule biostatis_arms:
    input:
        unpack(_arms_inputs),
        **script_inputs("scripts/biostatis_arms.py"),
    output:
        runs=f"{R}/systems/biostatis/arms={{arms}}/runs.csv",
        history=f"{R}/systems/biostatis/arms={{arms}}/history.csv",
        run_json=f"{R}/systems/biostatis/arms={{arms}}/run.json",
    log:
        f"{L}/systems/biostatis/arms={{arms}}.log",
    benchmark:
        f"{L}/benchmarks/systems/biostatis/arms={{arms}}.tsv"
    wildcard_constraints:
        arms="matched|sweep",
    threads: threads_for("eos_train")
    resources:
        **res("eos_train"),
    params:
        arms=lambda wildcards: BIO_ARM_SETS[wildcards.arms],
        seeds=_arm_seeds(),
    script:
        "../../scripts/biostatis_arms.py"


# ---- BiostatisV6's own benchmark: ResNet-18 on CIFAR-10 (config/biostatis_cifar.yaml) -----------
# Outputs: {R}/systems/biostatis_cifar/optimizer=/lr=/seed=/{history.csv,run.json,model.pt} and
# {R}/tables/biostatis/cifar10.{csv,tex}. The archive comes from rule cifar10_download (data.smk).
BIO_CIFAR = config["biostatis_cifar"]
BIO_CIFAR_TAIL = "optimizer={optimizer}/lr={lr}/seed={seed}"
# keyed by (name, lr): an optimizer may run at several lrs (the lr-matched AdamW arm)
BIO_CIFAR_ENTRIES = {
    (e["name"], format_lr(e["lr"])): e for e in BIO_CIFAR["optimizers"]
}
BIO_CIFAR_NAMES = sorted({e["name"] for e in BIO_CIFAR["optimizers"]})


def _biostatis_cifar_check():
    if len(BIO_CIFAR_ENTRIES) != len(BIO_CIFAR["optimizers"]):
        raise WorkflowError(
            "biostatis_cifar.optimizers: each (optimizer, lr) pair may be listed once"
        )
    for i, e in enumerate(BIO_CIFAR["optimizers"]):
        if e["name"] not in OPTIMIZERS:
            raise WorkflowError(
                f"biostatis_cifar.optimizers[{i}].name: unknown optimizer '{e['name']}'; "
                f"known: {sorted(OPTIMIZERS)}"
            )
        try:
            OPTIMIZERS[e["name"]].hyper(**e.get("hyper", {}))
        except ValueError as exc:
            raise WorkflowError(
                f"biostatis_cifar.optimizers[{i}].hyper: {exc}"
            ) from None
    if BIO_CIFAR["enabled"] and "adamw" not in BIO_CIFAR_NAMES:
        raise WorkflowError(
            "biostatis_cifar.optimizers: the table's baseline 'adamw' is missing"
        )


_biostatis_cifar_check()


def biostatis_cifar_runs():
    return [
        {
            "dataset": "cifar10",
            "model": "resnet18",
            "optimizer": e["name"],
            "lr": format_lr(e["lr"]),
            "loss": "ce",
            "seed": seed,
        }
        for e in BIO_CIFAR["optimizers"]
        for seed in BIO_CIFAR["seeds"]
    ]


def _biostatis_cifar_files(name):
    return [
        f"{R}/systems/biostatis_cifar/" + BIO_CIFAR_TAIL.format(**run) + f"/{name}"
        for run in biostatis_cifar_runs()
    ]


def biostatis_cifar_targets():
    if not BIO_CIFAR["enabled"]:
        return []
    return [f"{R}/tables/biostatis/cifar10.tex", f"{R}/tables/biostatis/cifar10.csv"]


def _biostatis_cifar_archive():
    """The archive rule cifar10_download makes (data.smk); an error naming it if that is absent."""
    path = globals().get("CIFAR10_ARCHIVE_PATH")
    if path is None:
        raise WorkflowError(
            "biostatis_cifar needs rule cifar10_download and CIFAR10_ARCHIVE_PATH from "
            "workflow/rules/data.smk (the data branch)"
        )
    return path


def biostatis_cifar_settings(wildcards):
    entry = BIO_CIFAR_ENTRIES[(wildcards.optimizer, wildcards.lr)]
    return {
        "optimizer": wildcards.optimizer,
        "lr": parse_lr(wildcards.lr),
        "optimizer_hyper": dict(entry.get("hyper", {})),
        "seed": int(wildcards.seed),
        "epochs": BIO_CIFAR["epochs"],
        "batch_size": BIO_CIFAR["batch_size"],
        "device": BIO_CIFAR["device"],
    }


rule biostatis_cifar_train:
    input:
        **script_inputs(
            "scripts/biostatis_cifar_train.py",
            archive=lambda wildcards: ancient(_biostatis_cifar_archive()),
        ),
    output:
        history=f"{R}/systems/biostatis_cifar/{BIO_CIFAR_TAIL}/history.csv",
        run_json=f"{R}/systems/biostatis_cifar/{BIO_CIFAR_TAIL}/run.json",
        model=f"{R}/systems/biostatis_cifar/{BIO_CIFAR_TAIL}/model.pt",
    log:
        f"{L}/systems/biostatis_cifar/{BIO_CIFAR_TAIL}/train.log",
    benchmark:
        f"{L}/benchmarks/systems/biostatis_cifar/{BIO_CIFAR_TAIL}/train.tsv"
    wildcard_constraints:
        optimizer=_alternatives(BIO_CIFAR_NAMES),
        lr=r"[0-9][0-9.e+-]*",
        seed=r"\d+",
    threads: threads_for("biostatis_cifar")
    resources:
        **res("biostatis_cifar"),
    params:
        settings=biostatis_cifar_settings,
        root=lambda wildcards: str(Path(_biostatis_cifar_archive()).parent),
        checkpoint_dir=lambda wildcards: f"{CKPT}/systems/biostatis_cifar/"
        + BIO_CIFAR_TAIL.format(**dict(wildcards.items())),
    script:
        "../../scripts/biostatis_cifar_train.py"


rule biostatis_cifar_table:
    input:
        **script_inputs("scripts/biostatis_table.py"),
        history=_biostatis_cifar_files("history.csv"),
        run_json=_biostatis_cifar_files("run.json"),
        model=_biostatis_cifar_files("model.pt"),
    output:
        runs=f"{R}/aggregate/biostatis/cifar10_runs.csv",
        csv=f"{R}/tables/biostatis/cifar10.csv",
        tex=f"{R}/tables/biostatis/cifar10.tex",
        curves_pdf=f"{R}/figures/biostatis/cifar10_curves.pdf",
        curves_png=f"{R}/figures/biostatis/cifar10_curves.png",
    log:
        f"{L}/tables/biostatis/cifar10.log",
    threads: 1
    resources:
        **res("default"),
    params:
        runs=biostatis_cifar_runs(),
    script:
        "../../scripts/biostatis_table.py"
