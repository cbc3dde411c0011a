# BiostatisV6 (seed 003) beside AdamW, from the EoS grid's runs (eos.smk): one table with mean +- std
# over seeds, the paired accuracy test, time and optimizer-state memory ratios and the
# representation metrics of the last linear layer, with the seed's claimed numbers beside.
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
    ]


def _biostatis_files(name):
    return [f"{eos_run_dir(run)}/{name}" for run in biostatis_runs()]


rule biostatis_table:
    input:
        **script_inputs("scripts/biostatis_table.py"),
        history=_biostatis_files("history.csv"),
        run_json=_biostatis_files("run.json"),
        model=_biostatis_files("model.pt"),
    output:
        runs=f"{R}/aggregate/biostatis/runs.csv",
        csv=f"{R}/tables/biostatis/comparison.csv",
        tex=f"{R}/tables/biostatis/comparison.tex",
    log:
        f"{L}/tables/biostatis/comparison.log",
    threads: 1
    resources:
        **res("default"),
    params:
        runs=biostatis_runs(),
    script:
        "../../scripts/biostatis_table.py"
