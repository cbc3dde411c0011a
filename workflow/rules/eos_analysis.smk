# Edge of Stability analysis (Appendix A.2), downstream of eos_train (rules/eos.smk):
#   per run     {R}/eos/<run tail>/{landscape,spectrum}.{npz,json}
#   aggregate   {R}/aggregate/eos/{trajectories.csv,trajectories.parquet,summary.csv,aggregate.json}
#   figures     {R}/figures/eos/dataset=/model=/loss=/optimizer=/lr=/{figure3,multiseed}.{pdf,png}
#               {R}/figures/eos/dataset=/model=/loss=/{comparison,spectrum}.{pdf,png}
#   table       {R}/tables/eos/summary.tex
# The runs come from eos_runs() (rules/eos.smk); settings from config["eos"]["landscape"|"spectrum"].

EOS_GROUP_TAIL = "dataset={dataset}/model={model}/loss={loss}"
EOS_CONFIG_TAIL = EOS_GROUP_TAIL + "/optimizer={optimizer}/lr={lr}"
EOS_AGG = f"{R}/aggregate/eos"
EOS_FIG = f"{R}/figures/eos"
EOS_WILDCARDS = {
    "dataset": _alternatives(EOS["datasets"]),
    "model": _alternatives(EOS_MODELS),
    "optimizer": _alternatives(EOS_OPTIMIZERS),
    "lr": r"[0-9][0-9.e+-]*",
    "loss": _alternatives(EOS_LOSSES),
    "seed": r"\d+",
}
EOS_CONFIG_KEYS = ("dataset", "model", "optimizer", "lr", "loss")
EOS_GROUP_KEYS = ("dataset", "model", "loss")


def _eos_unique(keys):
    """Distinct values of ``keys`` over eos_runs(), in run order, each with its seeds."""
    out = {}
    for run in eos_runs():
        out.setdefault(tuple(run[k] for k in keys), []).append(run["seed"])
    return [(dict(zip(keys, values)), seeds) for values, seeds in out.items()]


def _eos_key(wildcards, keys):
    return tuple(str(getattr(wildcards, k)) for k in keys)


def eos_config_params(wildcards):
    return {k: getattr(wildcards, k) for k in EOS_CONFIG_KEYS}


def eos_group_params(wildcards):
    return {k: getattr(wildcards, k) for k in EOS_GROUP_KEYS}


def eos_config_seeds(wildcards):
    key = _eos_key(wildcards, EOS_CONFIG_KEYS)
    for cfg, seeds in _eos_unique(EOS_CONFIG_KEYS):
        if tuple(str(cfg[k]) for k in EOS_CONFIG_KEYS) == key:
            return seeds
    raise WorkflowError(
        f"no eos runs for configuration {dict(zip(EOS_CONFIG_KEYS, key))}"
    )


def eos_config_landscapes(wildcards):
    keys = {k: getattr(wildcards, k) for k in EOS_CONFIG_KEYS}
    return [
        f"{R}/eos/" + EOS_TAIL.format(**keys, seed=s) + "/landscape.npz"
        for s in eos_config_seeds(wildcards)
    ]


def eos_group_configs(wildcards):
    """First-seed run (as a dict) of every configuration in a (dataset, model, loss) group."""
    key = _eos_key(wildcards, EOS_GROUP_KEYS)
    return [
        {**cfg, "seed": seeds[0]}
        for cfg, seeds in _eos_unique(EOS_CONFIG_KEYS)
        if tuple(str(cfg[k]) for k in EOS_GROUP_KEYS) == key
    ]


def eos_group_spectra(wildcards):
    return [f"{eos_run_dir(run)}/spectrum.npz" for run in eos_group_configs(wildcards)]


def _eos_first_seed_runs():
    return [{**cfg, "seed": seeds[0]} for cfg, seeds in _eos_unique(EOS_CONFIG_KEYS)]


def eos_analysis_targets():
    runs = eos_runs()
    per_run = [f"{eos_run_dir(r)}/landscape.npz" for r in runs]
    # spectra only where a figure reads them: each configuration's first seed (quick budget)
    per_run += [f"{eos_run_dir(r)}/spectrum.npz" for r in _eos_first_seed_runs()]
    figures = [
        f"{EOS_FIG}/" + EOS_CONFIG_TAIL.format(**cfg) + f"/{name}.{ext}"
        for cfg, _ in _eos_unique(EOS_CONFIG_KEYS)
        for name in ("figure3", "multiseed")
        for ext in ("pdf", "png")
    ]
    figures += [
        f"{EOS_FIG}/" + EOS_GROUP_TAIL.format(**group) + f"/{name}.{ext}"
        for group, _ in _eos_unique(EOS_GROUP_KEYS)
        for name in ("comparison", "spectrum")
        for ext in ("pdf", "png")
    ]
    return [
        *per_run,
        f"{EOS_AGG}/trajectories.csv",
        f"{EOS_AGG}/summary.csv",
        f"{R}/tables/eos/summary.tex",
        *figures,
    ]


localrules:
    eos_aggregate,
    eos_table,


rule eos_landscape:
    input:
        **script_inputs("scripts/eos_landscape.py", data=eos_data_input),
        history=f"{R}/eos/{EOS_TAIL}/history.csv",
        snapshots=f"{R}/eos/{EOS_TAIL}/snapshots.npz",
        run_json=f"{R}/eos/{EOS_TAIL}/run.json",
    output:
        npz=f"{R}/eos/{EOS_TAIL}/landscape.npz",
        meta=f"{R}/eos/{EOS_TAIL}/landscape.json",
    log:
        f"{L}/eos/{EOS_TAIL}/landscape.log",
    benchmark:
        f"{L}/benchmarks/eos/{EOS_TAIL}/landscape.tsv"
    wildcard_constraints:
        **EOS_WILDCARDS,
    threads: threads_for("eos_analysis")
    resources:
        **res("eos_analysis"),
    params:
        landscape=EOS["landscape"],
        device=EOS["device"],
    script:
        "../../scripts/eos_landscape.py"


rule eos_spectrum:
    input:
        **script_inputs("scripts/eos_spectrum.py", data=eos_data_input),
        history=f"{R}/eos/{EOS_TAIL}/history.csv",
        snapshots=f"{R}/eos/{EOS_TAIL}/snapshots.npz",
        run_json=f"{R}/eos/{EOS_TAIL}/run.json",
    output:
        npz=f"{R}/eos/{EOS_TAIL}/spectrum.npz",
        meta=f"{R}/eos/{EOS_TAIL}/spectrum.json",
    log:
        f"{L}/eos/{EOS_TAIL}/spectrum.log",
    benchmark:
        f"{L}/benchmarks/eos/{EOS_TAIL}/spectrum.tsv"
    wildcard_constraints:
        **EOS_WILDCARDS,
    threads: threads_for("eos_analysis")
    resources:
        **res("eos_analysis"),
    params:
        spectrum=EOS["spectrum"],
        device=EOS["device"],
    script:
        "../../scripts/eos_spectrum.py"


rule eos_aggregate:
    input:
        **script_inputs("scripts/eos_aggregate.py"),
        histories=[f"{eos_run_dir(r)}/history.csv" for r in eos_runs()],
        run_jsons=[f"{eos_run_dir(r)}/run.json" for r in eos_runs()],
    output:
        trajectories=f"{EOS_AGG}/trajectories.csv",
        parquet=f"{EOS_AGG}/trajectories.parquet",
        summary=f"{EOS_AGG}/summary.csv",
        meta=f"{EOS_AGG}/aggregate.json",
    log:
        f"{L}/aggregate/eos/aggregate.log",
    threads: 1
    resources:
        **res("default"),
    params:
        runs=eos_runs(),
    script:
        "../../scripts/eos_aggregate.py"


rule eos_figures:
    input:
        **script_inputs("scripts/eos_figures.py"),
        trajectories=f"{EOS_AGG}/trajectories.csv",
        summary=f"{EOS_AGG}/summary.csv",
        landscapes=eos_config_landscapes,
    output:
        figure3_pdf=report(
            f"{EOS_FIG}/{EOS_CONFIG_TAIL}/figure3.pdf",
            caption="../report/eos_figure3.rst",
            category="A.2 Edge of Stability",
        ),
        figure3_png=f"{EOS_FIG}/{EOS_CONFIG_TAIL}/figure3.png",
        multiseed_pdf=report(
            f"{EOS_FIG}/{EOS_CONFIG_TAIL}/multiseed.pdf",
            caption="../report/eos_multiseed.rst",
            category="A.2 Edge of Stability",
        ),
        multiseed_png=f"{EOS_FIG}/{EOS_CONFIG_TAIL}/multiseed.png",
    log:
        f"{L}/figures/eos/{EOS_CONFIG_TAIL}/figures.log",
    benchmark:
        f"{L}/benchmarks/figures/eos/{EOS_CONFIG_TAIL}/figures.tsv"
    wildcard_constraints:
        **EOS_WILDCARDS,
    threads: threads_for("figures")
    resources:
        **res("figures"),
    params:
        config=eos_config_params,
        seeds=eos_config_seeds,
    script:
        "../../scripts/eos_figures.py"


rule eos_figures_compare:
    input:
        **script_inputs("scripts/eos_figures_compare.py"),
        trajectories=f"{EOS_AGG}/trajectories.csv",
        summary=f"{EOS_AGG}/summary.csv",
        spectra=eos_group_spectra,
    output:
        comparison_pdf=report(
            f"{EOS_FIG}/{EOS_GROUP_TAIL}/comparison.pdf",
            caption="../report/eos_comparison.rst",
            category="A.2 Edge of Stability",
        ),
        comparison_png=f"{EOS_FIG}/{EOS_GROUP_TAIL}/comparison.png",
        spectrum_pdf=report(
            f"{EOS_FIG}/{EOS_GROUP_TAIL}/spectrum.pdf",
            caption="../report/eos_spectrum.rst",
            category="A.2 Edge of Stability",
        ),
        spectrum_png=f"{EOS_FIG}/{EOS_GROUP_TAIL}/spectrum.png",
    log:
        f"{L}/figures/eos/{EOS_GROUP_TAIL}/compare.log",
    benchmark:
        f"{L}/benchmarks/figures/eos/{EOS_GROUP_TAIL}/compare.tsv"
    wildcard_constraints:
        **EOS_WILDCARDS,
    threads: threads_for("figures")
    resources:
        **res("figures"),
    params:
        group=eos_group_params,
        configs=eos_group_configs,
    script:
        "../../scripts/eos_figures_compare.py"


rule eos_table:
    input:
        **script_inputs("scripts/eos_table.py"),
        summary=f"{EOS_AGG}/summary.csv",
    output:
        tex=f"{R}/tables/eos/summary.tex",
    log:
        f"{L}/tables/eos/summary.log",
    threads: 1
    resources:
        **res("default"),
    script:
        "../../scripts/eos_table.py"
