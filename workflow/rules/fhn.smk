# Appendix A.1: sequence models on irregularly sampled FitzHugh-Nagumo trajectories.
# fhn_train (one job per system x condition x model, looping over the seeds: a job costs seconds of
# start-up, so per-seed jobs would mostly wait) -> fhn_evaluate (one job per system x condition:
# every model and seed scored on the test split and the long rollouts) ->
# fhn_aggregate (tidy table + statistics over seeds) -> fhn_figure (figure 2, one per system)
# and fhn_table (LaTeX summary).
# Outputs: {R}/fhn/system=/condition=/model=/seed=/{model.pt,history.csv,run.json,
#          metrics.json,curves.npz,eval.json}, {R}/aggregate/fhn/, {R}/figures/fhn/, {R}/tables/fhn/
import inspect

from otgap.config import fhn_system_train
from otgap.data.fhn import SYSTEMS as FHN_SYSTEMS
from otgap.data.fhn import system_params
from otgap.models.sequence import SEQUENCE_MODELS

FHN_TRAIN = FHN["train"]
FHN_ANALYSIS = FHN["analysis"]
FHN_TAIL = "system={system}/condition={condition}/model={model}/seed={seed}"


FHN_TRAIN_KEYS = {
    "epochs",
    "batch_size",
    "lr",
    "patience",
    "eval_every",
    "plateau_patience",
    "plateau_factor",
    "grad_clip",
    "objective",
    "horizon_ramp_epochs",
    "keep",
    "batch_seeds",
    "reason",
}
# the schedule every learned model shares (docs/a1_protocol.md): a per-model override of one of
# these needs a stated, measured ``reason`` beside it in the config
FHN_SCHEDULE_KEYS = {
    "epochs",
    "lr",
    "patience",
    "eval_every",
    "plateau_patience",
    "plateau_factor",
    "grad_clip",
    "objective",
    "horizon_ramp_epochs",
    "keep",
}
FHN_TUNING = FHN_TRAIN.get("tuning") or {}


def fhn_is_learned(model):
    """A model trained from the observations (not a baseline, not the oracle that regresses the
    true field): the models the protocol trains alike and compares."""
    cls = SEQUENCE_MODELS[model]
    return not cls.is_baseline and cls.fit_target != "vector_field"


def fhn_tuned(model):
    return bool(FHN_TUNING.get("enabled", False)) and fhn_is_learned(model)


def _fhn_check_model_kwargs(where, model_kwargs):
    for name, kwargs in model_kwargs.items():
        if name not in SEQUENCE_MODELS:
            raise WorkflowError(
                f"{where}: unknown model '{name}'; known: {sorted(SEQUENCE_MODELS)}"
            )
        accepted = set(inspect.signature(SEQUENCE_MODELS[name]).parameters) - {"hidden"}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise WorkflowError(
                f"{where}.{name}: unknown key(s) {unknown}; known: {sorted(accepted)}"
            )


def _fhn_check_overrides(where, overrides):
    for name, over in overrides.items():
        if name not in SEQUENCE_MODELS:
            raise WorkflowError(
                f"{where}: unknown model '{name}'; known: {sorted(SEQUENCE_MODELS)}"
            )
        unknown = sorted(set(over) - FHN_TRAIN_KEYS)
        if unknown:
            raise WorkflowError(
                f"{where}.{name}: unknown key(s) {unknown}; known: {sorted(FHN_TRAIN_KEYS)}"
            )
        own_schedule = sorted(set(over) & FHN_SCHEDULE_KEYS)
        if (
            fhn_is_learned(name)
            and own_schedule
            and not str(over.get("reason", "")).strip()
        ):
            raise WorkflowError(
                f"{where}.{name}: a learned model's own schedule {own_schedule} breaks the "
                "one-schedule protocol (docs/a1_protocol.md); remove it, or state the measured "
                "reason in a 'reason' key beside it"
            )
        if fhn_tuned(name) and "lr" in over:
            raise WorkflowError(
                f"{where}.{name}: lr is chosen by fhn.train.tuning for this model; remove it"
            )


def _fhn_check_config():
    """Names and model keywords that the jobs would reject, checked before any job runs."""
    _fhn_check_model_kwargs("fhn.train.model_kwargs", FHN_TRAIN["model_kwargs"])
    if FHN_ANALYSIS["reference"] not in FHN["models"]:
        raise WorkflowError(
            f"fhn.analysis.reference: '{FHN_ANALYSIS['reference']}' is not in fhn.models {FHN['models']}"
        )
    _fhn_check_overrides("fhn.train.overrides", FHN_TRAIN.get("overrides", {}))
    per_system = FHN_TRAIN.get("system_overrides", {})
    for system, own in per_system.items():
        where = f"fhn.train.system_overrides.{system}"
        # the schema names the systems too; kept for a config that bypassed it
        if system not in FHN_SYSTEMS:
            raise WorkflowError(
                f"{where}: unknown system; known: {sorted(FHN_SYSTEMS)}"
            )
        unknown = sorted(set(own or {}) - {"model_kwargs", "overrides"})
        if unknown:
            raise WorkflowError(
                f"{where}: unknown key(s) {unknown}; known: ['model_kwargs', 'overrides']"
            )
        _fhn_check_model_kwargs(
            f"{where}.model_kwargs", (own or {}).get("model_kwargs", {})
        )
        _fhn_check_overrides(f"{where}.overrides", (own or {}).get("overrides", {}))
    # the oracle integrates exactly as the learned Neural ODE, on every system
    for system in sorted(set(FHN["systems"]) | set(per_system)):
        kw = fhn_system_train(FHN_TRAIN, system)["model_kwargs"]
        where = (
            f"fhn.train.model_kwargs (with fhn.train.system_overrides.{system})"
            if system in per_system
            else "fhn.train.model_kwargs"
        )
        for key in ("n_sub", "max_step", "solver"):
            ode = kw.get("neural_ode", {}).get(key)
            oracle = kw.get("neural_ode_oracle", {}).get(key)
            if ode != oracle:
                raise WorkflowError(
                    f"{where}: neural_ode and neural_ode_oracle must integrate alike on system "
                    f"'{system}'; {key} differs ({ode} vs {oracle})"
                )
    if FHN_TUNING.get("enabled", False):
        tseeds = [int(x) for x in FHN_TUNING.get("seeds", [])]
        clash = sorted(set(tseeds) & {int(x) for x in FHN["seeds"]})
        if len(set(tseeds)) < 2 or clash:
            raise WorkflowError(
                f"fhn.train.tuning.seeds: need >= 2 distinct seeds that are not evaluation seeds "
                f"(fhn.seeds); got {tseeds}" + (f", shared: {clash}" if clash else "")
            )
        from otgap.train.tuning import check_grid

        try:
            check_grid(FHN_TUNING.get("lr_grid", []))
        except ValueError as exc:
            raise WorkflowError(f"fhn.train.tuning.lr_grid: {exc}") from None
    if FHN_ANALYSIS["focus_condition"] not in FHN_CONDITIONS:
        raise WorkflowError(
            f"fhn.analysis.focus_condition: '{FHN_ANALYSIS['focus_condition']}' is not one of "
            f"the conditions {sorted(FHN_CONDITIONS)}"
        )


_fhn_check_config()


def fhn_runs():
    """Every (system, condition, model, seed) of the grid, in a fixed order."""
    return [
        {"system": s, "condition": c, "model": m, "seed": seed}
        for s in FHN["systems"]
        for c in fhn_system_conditions(s)
        for m in FHN["models"]
        for seed in FHN["seeds"]
    ]


def fhn_run_file(run, name):
    return f"{R}/fhn/" + FHN_TAIL.format(**run) + f"/{name}"


def fhn_model_files(name):
    """Files ``name`` of every seed and model (seed-major) for the {system}/{condition} wildcards."""
    return [
        f"{R}/fhn/system={{system}}/condition={{condition}}/model={m}/seed={seed}/{name}"
        for seed in FHN["seeds"]
        for m in FHN["models"]
    ]


def fhn_seed_files(name):
    """Files ``name`` of every seed for the {system}/{condition}/{model} wildcards."""
    return [
        f"{R}/fhn/system={{system}}/condition={{condition}}/model={{model}}/seed={seed}/{name}"
        for seed in FHN["seeds"]
    ]


def fhn_seed_datasets(wildcards):
    return [
        fhn_dataset_path(wildcards.system, wildcards.condition, s) for s in FHN["seeds"]
    ]


def fhn_model_kwargs(wildcards):
    """Constructor keywords: the config's (with the system's own, fhn.train.system_overrides),
    plus the drive frequency on a forced system (phase-aware models) for every model that
    accepts it."""
    own = fhn_system_train(FHN_TRAIN, wildcards.system)["model_kwargs"]
    kwargs = dict(own.get(wildcards.model, {}))
    params = system_params(wildcards.system, fhn_system_params(wildcards))
    accepted = inspect.signature(SEQUENCE_MODELS[wildcards.model]).parameters
    if FHN_TRAIN["phase_aware"] and params["amp"] != 0.0 and "drive_omega" in accepted:
        kwargs["drive_omega"] = params["omega"]
    return kwargs


def fhn_train_code(wildcards):
    """Sources a training job depends on: its script's imports without the registry's other
    entries, plus the module of its own model, so editing one model retrains only that model.
    """
    model_module = SEQUENCE_MODELS[wildcards.model].__module__
    return sorted(
        set(src_deps("scripts/fhn_train.py", follow_registries=False))
        | set(src_deps(model_module, follow_registries=False))
    )


def fhn_tune_code(wildcards):
    """As fhn_train_code, for the tuning script."""
    model_module = SEQUENCE_MODELS[wildcards.model].__module__
    return sorted(
        set(src_deps("scripts/fhn_tune.py", follow_registries=False))
        | set(src_deps(model_module, follow_registries=False))
    )


def fhn_train_settings(wildcards):
    """Everything the training job depends on (its params, hence its rerun trigger); the
    system's fhn.train.system_overrides enter here and in fhn_model_kwargs."""
    overrides = fhn_system_train(FHN_TRAIN, wildcards.system)["overrides"]
    return {
        "system": wildcards.system,
        "condition": wildcards.condition,
        "model": wildcards.model,
        "seeds": list(FHN["seeds"]),
        "system_params": fhn_system_params(wildcards),
        "hidden": FHN_TRAIN["hidden"],
        "model_kwargs": fhn_model_kwargs(wildcards),
        "epochs": FHN_TRAIN["epochs"],
        "batch_size": FHN_TRAIN["batch_size"],
        "lr": FHN_TRAIN["lr"],
        "eval_every": FHN_TRAIN["eval_every"],
        "plateau_patience": FHN_TRAIN["plateau_patience"],
        "plateau_factor": FHN_TRAIN["plateau_factor"],
        "grad_clip": FHN_TRAIN["grad_clip"],
        "device": FHN_TRAIN["device"],
        "checkpoint_every": FHN_TRAIN["checkpoint_every"],
        "objective": FHN_TRAIN["objective"],
        "horizon_ramp_epochs": FHN_TRAIN["horizon_ramp_epochs"],
        "patience": FHN_TRAIN["patience"],
        "keep": FHN_TRAIN["keep"],
        "batch_seeds": FHN_TRAIN.get("batch_seeds", True),
        **{
            k: v for k, v in overrides.get(wildcards.model, {}).items() if k != "reason"
        },
    }


def fhn_tuning_seed_datasets(wildcards):
    return [
        fhn_dataset_path(wildcards.system, wildcards.condition, s)
        for s in FHN_TUNING.get("seeds", [])
    ]


def fhn_tune_settings(wildcards):
    s = fhn_train_settings(wildcards)
    s["tuning"] = {
        "seeds": [int(x) for x in FHN_TUNING["seeds"]],
        "lr_grid": [float(x) for x in FHN_TUNING["lr_grid"]],
        "max_extend": int(FHN_TUNING.get("max_extend", 2)),
    }
    s.pop("lr", None)  # the grid replaces it
    s.pop("seeds", None)
    return s


def fhn_train_inputs(wildcards):
    """The tuning file of a tuned cell (its chosen lr); nothing otherwise."""
    if fhn_tuned(wildcards.model):
        return {
            "tuning": f"{R}/fhn/" + FHN_CELL.format(**dict(wildcards)) + "/tuning.json"
        }
    return {}


def fhn_tuning_files():
    if not FHN_TUNING.get("enabled", False):
        return []
    return [
        f"{R}/fhn/system={s}/condition={c}/model={m}/tuning.json"
        for s in FHN["systems"]
        for c in fhn_system_conditions(s)
        for m in FHN["models"]
        if fhn_tuned(m)
    ]


def fhn_checkpoint_dirs(wildcards):
    keys = ("system", "condition", "model")
    run = {k: getattr(wildcards, k) for k in keys}
    return [f"{CKPT}/fhn/" + FHN_TAIL.format(**run, seed=seed) for seed in FHN["seeds"]]


def fhn_evaluate_settings(wildcards):
    return {
        "models": list(FHN["models"]),
        "seeds": list(FHN["seeds"]),
        "vpt_threshold": FHN_ANALYSIS["vpt_threshold"],
        "keep_rollouts": fhn_keep_rollouts(),
    }


def fhn_keep_rollouts():
    """Rollout predictions each evaluation keeps: the figure's keep_rollouts, raised to the A.1
    known-physics reference's starts where that is on (it scores the learned models on them).
    """
    keep = int(FHN_ANALYSIS["keep_rollouts"])
    ref = config.get("systems", {}).get("ode_solver", {}).get("a1_reference", {})
    if ref.get("enabled", False):
        keep = max(keep, int(ref.get("n_starts", 0)))
    return keep


def fhn_focus_condition(system):
    """The focus condition, or the system's first condition where it is not run for it."""
    conds = fhn_system_conditions(system)
    focus = FHN_ANALYSIS["focus_condition"]
    return focus if focus in conds else conds[0]


def fhn_unfair_systems():
    """Forced systems whose models do not see the drive's phase (phase_aware off): an autonomous
    field cannot represent them, so they stay out of the table."""
    if FHN_TRAIN["phase_aware"]:
        return []
    return [
        s
        for s in FHN["systems"]
        if system_params(s, FHN.get("system_params", {}).get(s, {}))["amp"] != 0.0
    ]


def fhn_figure_specs():
    """One figure per system: figure2 for the first system, figure2_<system> for the others."""
    regular = FHN_ANALYSIS["regular_condition"]
    return [
        {
            "system": s,
            "focus_condition": fhn_focus_condition(s),
            "regular_condition": (
                regular if regular in fhn_system_conditions(s) else None
            ),
            "models": list(FHN["models"]),
            "conditions": fhn_system_conditions(s),
            "seeds": list(FHN["seeds"]),
            "smoothing": FHN_ANALYSIS["smoothing"],
            "error_points": FHN_ANALYSIS["error_points"],
        }
        for s in FHN["systems"]
    ]


def fhn_figure_files(ext):
    first = FHN["systems"][0]
    return [
        (
            f"{R}/figures/fhn/figure2.{ext}"
            if s == first
            else f"{R}/figures/fhn/figure2_{s}.{ext}"
        )
        for s in FHN["systems"]
    ]


def fhn_targets():
    return [
        f"{R}/aggregate/fhn/metrics.csv",
        f"{R}/aggregate/fhn/stats.csv",
        *fhn_figure_files("pdf"),
        *fhn_figure_files("png"),
        f"{R}/tables/fhn/summary.tex",
    ]


_fhn_wildcards = {
    "system": _system_pattern,
    "condition": _cond_pattern,
    "model": "|".join(sorted(FHN["models"])),
}
FHN_CELL = "system={system}/condition={condition}/model={model}"


rule fhn_tune:
    input:
        code=fhn_tune_code,
        data=fhn_tuning_seed_datasets,
    output:
        json=f"{R}/fhn/{FHN_CELL}/tuning.json",
    log:
        f"{L}/fhn/{FHN_CELL}/tune.log",
    benchmark:
        f"{L}/benchmarks/fhn/{FHN_CELL}/tune.tsv"
    wildcard_constraints:
        **_fhn_wildcards,
    priority: 10
    threads: threads_for("fhn_train")
    resources:
        **res("fhn_train"),
    params:
        settings=fhn_tune_settings,
        checkpoint_dir=lambda w: f"{CKPT}/fhn_tune/" + FHN_CELL.format(**dict(w)),
    script:
        "../../scripts/fhn_tune.py"


rule fhn_train:
    input:
        unpack(fhn_train_inputs),
        code=fhn_train_code,
        data=fhn_seed_datasets,
    output:
        model=fhn_seed_files("model.pt"),
        history=fhn_seed_files("history.csv"),
        run_json=fhn_seed_files("run.json"),
    log:
        f"{L}/fhn/{FHN_CELL}/train.log",
    benchmark:
        f"{L}/benchmarks/fhn/{FHN_CELL}/train.tsv"
    wildcard_constraints:
        **_fhn_wildcards,
    # the longest chain (data, training, evaluation, then the paper) starts first
    priority: 10
    threads: threads_for("fhn_train")
    resources:
        **res("fhn_train"),
    params:
        settings=fhn_train_settings,
        checkpoint_dirs=fhn_checkpoint_dirs,
    script:
        "../../scripts/fhn_train.py"


# One evaluation job per (system, condition) scores every model and seed of it: a job costs seconds
# of start-up (importing torch) and about a second of scoring, so finer jobs would mostly wait.
rule fhn_evaluate:
    input:
        **script_inputs(
            "scripts/fhn_evaluate.py",
            data=fhn_seed_datasets,
            models=fhn_model_files("model.pt"),
        ),
    output:
        metrics=fhn_model_files("metrics.json"),
        curves=fhn_model_files("curves.npz"),
        meta=fhn_model_files("eval.json"),
    log:
        f"{L}/fhn/system={{system}}/condition={{condition}}/evaluate.log",
    benchmark:
        f"{L}/benchmarks/fhn/system={{system}}/condition={{condition}}/evaluate.tsv"
    wildcard_constraints:
        system=_system_pattern,
        condition=_cond_pattern,
    # the longest chain (data, training, evaluation, then the paper) starts first
    priority: 10
    threads: 1
    resources:
        **res("default"),
    params:
        settings=fhn_evaluate_settings,
    script:
        "../../scripts/fhn_evaluate.py"


rule fhn_aggregate:
    input:
        **script_inputs(
            "scripts/fhn_aggregate.py",
            metrics=[fhn_run_file(r, "metrics.json") for r in fhn_runs()],
            run_json=[fhn_run_file(r, "run.json") for r in fhn_runs()],
            tuning=fhn_tuning_files(),
        ),
    output:
        csv=f"{R}/aggregate/fhn/metrics.csv",
        parquet=f"{R}/aggregate/fhn/metrics.parquet",
        meta=f"{R}/aggregate/fhn/metrics.json",
        stats=f"{R}/aggregate/fhn/stats.csv",
        tuning=f"{R}/aggregate/fhn/tuning.csv",
    log:
        f"{L}/aggregate/fhn/aggregate.log",
    threads: 1
    resources:
        **res("default"),
    params:
        runs=fhn_runs(),
        reference=FHN_ANALYSIS["reference"],
    script:
        "../../scripts/fhn_aggregate.py"


rule fhn_figure:
    input:
        **script_inputs(
            "scripts/fhn_figure.py",
            stats=f"{R}/aggregate/fhn/stats.csv",
            curves=[fhn_run_file(r, "curves.npz") for r in fhn_runs()],
            truth=[
                fhn_dataset_path(s, fhn_focus_condition(s), FHN["seeds"][0])
                for s in FHN["systems"]
            ],
        ),
    output:
        pdf=fhn_figure_files("pdf"),
        png=fhn_figure_files("png"),
    log:
        f"{L}/figures/fhn/figure2.log",
    benchmark:
        f"{L}/benchmarks/figures/fhn/figure2.tsv"
    threads: threads_for("figures")
    resources:
        **res("figures"),
    params:
        runs=fhn_runs(),
        figures=fhn_figure_specs(),
    script:
        "../../scripts/fhn_figure.py"


rule fhn_table:
    input:
        **script_inputs(
            "scripts/fhn_table.py",
            stats=f"{R}/aggregate/fhn/stats.csv",
            tuning=f"{R}/aggregate/fhn/tuning.csv",
        ),
    output:
        tex=f"{R}/tables/fhn/summary.tex",
    log:
        f"{L}/tables/fhn/summary.log",
    threads: 1
    resources:
        **res("default"),
    params:
        metrics=FHN_ANALYSIS["table_metrics"],
        models=list(FHN["models"]),
        conditions=list(FHN_CONDITIONS),
        reference=FHN_ANALYSIS["reference"],
        exclude_systems=fhn_unfair_systems(),
    script:
        "../../scripts/fhn_table.py"
