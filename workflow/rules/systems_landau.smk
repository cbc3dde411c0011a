# The Landau network: Landau nets + Langevin against plain FC nets (table), decision-boundary GIFs.
LANDAU = config["systems"]["landau"]
LANDAU_DIR = f"{R}/systems/landau"
LANDAU_LOGS = f"{L}/systems/landau"


def landau_run_id(entry):
    return f"{entry['model']}-{entry['optimizer']}"


LANDAU_RUNS = {landau_run_id(e): e for e in LANDAU["runs"]}
if len(LANDAU_RUNS) != len(LANDAU["runs"]):
    raise WorkflowError("systems.landau.runs: (model, optimizer) pairs must be unique")


def _check_landau_optimizers():
    from otgap.optim import OPTIMIZERS

    unknown = sorted({e["optimizer"] for e in LANDAU["runs"]} - set(OPTIMIZERS))
    if unknown:
        raise WorkflowError(
            f"systems.landau.runs: unknown optimizer name(s) {unknown}; known: {sorted(OPTIMIZERS)}"
        )


_check_landau_optimizers()


def landau_train_dir(run_id):
    return f"{LANDAU_DIR}/train/dataset={LANDAU['dataset']}/run={run_id}"


def landau_data_input(wildcards):
    """MNIST's four files come from the data stage (data.smk); digits ship with scikit-learn."""
    if LANDAU["dataset"] == "mnist":
        return {"mnist": ancient(list(MNIST_PATHS.values()))}
    return {}


def landau_train_settings(wildcards):
    entry = LANDAU_RUNS[wildcards.run]
    t = LANDAU["train"]
    settings = {k: t[k] for k in ("epochs", "batch_size", "hidden", "noise_sigmas")}
    settings.update(
        {k: LANDAU["landau"][k] for k in ("alpha", "gamma", "beta_init", "kappa", "dt")}
    )
    hyper = dict(entry.get("hyper", {}))
    if entry["optimizer"] == "langevin":
        hyper = {**LANDAU["langevin"], **hyper}
    return {
        **settings,
        "model": entry["model"],
        "optimizer": entry["optimizer"],
        "lr": entry["lr"],
        "optimizer_hyper": hyper,
        "seeds": list(LANDAU["seeds"]),
    }


def landau_data_params(wildcards):
    return {
        "name": LANDAU["dataset"],
        "n_train": LANDAU["n_train"],
        "root": MNIST_DIR,
    }


def landau_boundary_settings(wildcards):
    b = LANDAU["boundary"]
    return {
        "optimizer": "langevin",
        "lr": b["lr"],
        "epochs": b["epochs"],
        "batch_size": b["batch_size"],
        "hidden": b["hidden"],
        "optimizer_hyper": dict(LANDAU["langevin"]),
        **{
            k: LANDAU["landau"][k]
            for k in ("alpha", "gamma", "beta_init", "kappa", "dt")
        },
    }


def landau_boundary_params(wildcards):
    keys = ("n_samples", "data_seed", "seed", "grid", "frame_every", "epochs", "fps")
    return {k: LANDAU["boundary"][k] for k in keys}


def systems_landau_targets():
    b = LANDAU["boundary"]
    return [
        f"{LANDAU_DIR}/table/comparison.tex",
        f"{LANDAU_DIR}/table/comparison.csv",
        f"{LANDAU_DIR}/table/noise.png",
        *[
            f"{LANDAU_DIR}/boundary/dataset={d}/layers={n}/{f}"
            for d in b["datasets"]
            for n in b["layers"]
            for f in ("boundary.gif", "last_frame.png")
        ],
    ]


rule systems_landau_train:
    input:
        unpack(landau_data_input),
        **script_inputs("scripts/systems_landau_train.py"),
    output:
        runs=f"{landau_train_dir('{run}')}/runs.csv",
        history=f"{landau_train_dir('{run}')}/history.csv",
        timing=f"{landau_train_dir('{run}')}/timing.csv",
        run_json=f"{landau_train_dir('{run}')}/run.json",
    log:
        f"{LANDAU_LOGS}/train/dataset={LANDAU['dataset']}/run={{run}}.log",
    benchmark:
        f"{L}/benchmarks/systems/landau/train/dataset={LANDAU['dataset']}/run={{run}}.tsv"
    wildcard_constraints:
        run="|".join(sorted(LANDAU_RUNS)),
    threads: threads_for("systems")
    resources:
        **res("systems"),
    params:
        settings=landau_train_settings,
        data=landau_data_params,
    script:
        "../../scripts/systems_landau_train.py"


rule systems_landau_table:
    input:
        **script_inputs("scripts/systems_landau_table.py"),
        runs=[f"{landau_train_dir(r)}/runs.csv" for r in LANDAU_RUNS],
        timing=[f"{landau_train_dir(r)}/timing.csv" for r in LANDAU_RUNS],
    output:
        csv=f"{LANDAU_DIR}/table/comparison.csv",
        tex=f"{LANDAU_DIR}/table/comparison.tex",
        sidecar=f"{LANDAU_DIR}/table/comparison.json",
        noise_pdf=f"{LANDAU_DIR}/table/noise.pdf",
        noise_png=f"{LANDAU_DIR}/table/noise.png",
    log:
        f"{LANDAU_LOGS}/table.log",
    threads: 1
    resources:
        **res("default"),
    script:
        "../../scripts/systems_landau_table.py"


rule systems_landau_boundary:
    input:
        **script_inputs("scripts/systems_landau_boundary.py"),
    output:
        gif=f"{LANDAU_DIR}/boundary/dataset={{dataset}}/layers={{layers}}/boundary.gif",
        png=f"{LANDAU_DIR}/boundary/dataset={{dataset}}/layers={{layers}}/last_frame.png",
        run_json=f"{LANDAU_DIR}/boundary/dataset={{dataset}}/layers={{layers}}/run.json",
    log:
        f"{LANDAU_LOGS}/boundary/dataset={{dataset}}/layers={{layers}}.log",
    benchmark:
        f"{L}/benchmarks/systems/landau/boundary/dataset={{dataset}}/layers={{layers}}.tsv"
    wildcard_constraints:
        dataset="circles|moons|classification",
        layers="1|2",
    threads: 1
    resources:
        # 2-D toy nets and a GIF, seconds: the figures stage's share, never a GPU
        **res("figures"),
    params:
        settings=landau_boundary_settings,
        boundary=landau_boundary_params,
    script:
        "../../scripts/systems_landau_boundary.py"
