# The ODE-solving networks: networks that solve KNOWN ODEs (trial solutions, Lagaris et al. 1998).
# systems_ode_solve (one job per built-in problem, all its seeds) -> systems_ode_report (figure, errors.csv,
# errors.tex); systems_ode_a1_reference (one job per fhn system x seed): the known-physics
# reference row of A.1, solved from the last context state of the first rollouts.
# Outputs: {R}/systems/ode_solver/problem=/{solution.npz,metrics.json,run.json},
#          {R}/systems/ode_solver/{errors.csv,errors.tex,figure.pdf,figure.png},
#          {R}/systems/ode_solver/a1_reference/system=/seed=/{predictions.npz,reference.json}
ODE = config.get("systems", {}).get("ode_solver", {})
ODE_DIR = f"{R}/systems/ode_solver"
ODE_A1 = ODE.get("a1_reference", {})


def ode_problem_settings(wildcards):
    # every seed of a problem in one job (one process): imports once, not once per seed
    return {
        "problem": wildcards.problem,
        "seeds": list(ODE["seeds"]),
        "options": dict(ODE.get("options", {})),
    }


def ode_a1_settings(wildcards):
    return {
        "system": wildcards.system,
        "seed": ODE["seed"],
        "dataset_seed": int(wildcards.seed),
        "condition": ode_a1_condition(wildcards.system),
        "system_params": fhn_system_params(wildcards),
        "n_starts": ODE_A1["n_starts"],
        "periods": ODE_A1["periods"],
        "options": dict(ODE_A1.get("options", {})),
    }


def ode_a1_condition(system):
    """The condition whose rollout grid the reference is scored on: A.1's focus condition where
    the system runs it, else the system's first condition (rollout grids follow each condition's
    jitter, so one reference per (system, seed) is scored on one condition's grid)."""
    conditions = fhn_system_conditions(system)
    focus = FHN["analysis"]["focus_condition"]
    return focus if focus in conditions else conditions[0]


def ode_a1_datasets(wildcards):
    """The dataset of the system and seed under ode_a1_condition()."""
    return [
        fhn_dataset_path(
            wildcards.system, ode_a1_condition(wildcards.system), wildcards.seed
        )
    ]


def ode_problem_files(name):
    return [f"{ODE_DIR}/problem={p}/{name}" for p in ODE["problems"]]


rule systems_ode_solve:
    input:
        code=src_deps("scripts/systems_ode_solve.py"),
    output:
        solution=f"{ODE_DIR}/problem={{problem}}/solution.npz",
        metrics=f"{ODE_DIR}/problem={{problem}}/metrics.json",
        run_json=f"{ODE_DIR}/problem={{problem}}/run.json",
    log:
        f"{L}/systems/ode_solver/problem={{problem}}/solve.log",
    benchmark:
        f"{L}/benchmarks/systems/ode_solver/problem={{problem}}/solve.tsv"
    wildcard_constraints:
        problem=r"[a-z_]+",
    threads: 1
    resources:
        **res("default"),
    params:
        settings=ode_problem_settings,
    script:
        "../../scripts/systems_ode_solve.py"


rule systems_ode_report:
    input:
        **script_inputs(
            "scripts/systems_ode_report.py",
            solutions=ode_problem_files("solution.npz"),
            metrics=ode_problem_files("metrics.json"),
            runs=ode_problem_files("run.json"),
        ),
    output:
        csv=f"{ODE_DIR}/errors.csv",
        tex=f"{ODE_DIR}/errors.tex",
        pdf=f"{ODE_DIR}/figure.pdf",
        png=f"{ODE_DIR}/figure.png",
    log:
        f"{L}/systems/ode_solver/report.log",
    benchmark:
        f"{L}/benchmarks/systems/ode_solver/report.tsv"
    threads: 1
    resources:
        **res("figures"),
    params:
        problems=list(ODE["problems"]),
    script:
        "../../scripts/systems_ode_report.py"


rule systems_ode_a1_reference:
    input:
        code=src_deps("scripts/systems_ode_a1_reference.py"),
        data=ode_a1_datasets,
    output:
        predictions=f"{ODE_DIR}/a1_reference/system={{system}}/seed={{seed}}/predictions.npz",
        info=f"{ODE_DIR}/a1_reference/system={{system}}/seed={{seed}}/reference.json",
    log:
        f"{L}/systems/ode_solver/a1_reference/system={{system}}/seed={{seed}}/solve.log",
    benchmark:
        f"{L}/benchmarks/systems/ode_solver/a1_reference/system={{system}}/seed={{seed}}/solve.tsv"
    wildcard_constraints:
        system=_system_pattern,
        seed=r"\d+",
    threads: 1
    resources:
        **res("default"),
    params:
        settings=ode_a1_settings,
    script:
        "../../scripts/systems_ode_a1_reference.py"


def ode_a1_cells():
    """(system, condition, seed) of every A.1 reference, in a fixed order."""
    return [
        {"system": s, "condition": ode_a1_condition(s), "seed": int(seed)}
        for s in FHN["systems"]
        for seed in FHN["seeds"]
    ]


def ode_a1_cell_files(name):
    return [
        f"{ODE_DIR}/a1_reference/system={c['system']}/seed={c['seed']}/{name}"
        for c in ode_a1_cells()
    ]


def ode_a1_learned_files(name):
    """``name`` of every learned model on each reference cell (cell-major, then model)."""
    return [
        fhn_run_file({**c, "model": m}, name)
        for c in ode_a1_cells()
        for m in FHN["models"]
    ]


rule systems_ode_a1_table:
    input:
        **script_inputs(
            "scripts/systems_ode_a1_table.py",
            predictions=ode_a1_cell_files("predictions.npz"),
            infos=ode_a1_cell_files("reference.json"),
            data=[
                fhn_dataset_path(c["system"], c["condition"], c["seed"])
                for c in ode_a1_cells()
            ],
            curves=ode_a1_learned_files("curves.npz"),
            runs=ode_a1_learned_files("run.json"),
        ),
    output:
        csv=f"{ODE_DIR}/a1_reference/table.csv",
        tex=f"{ODE_DIR}/a1_reference/table.tex",
        info=f"{ODE_DIR}/a1_reference/table.json",
    log:
        f"{L}/systems/ode_solver/a1_reference/table.log",
    threads: 1
    resources:
        **res("default"),
    params:
        cells=ode_a1_cells(),
        models=list(FHN["models"]),
    script:
        "../../scripts/systems_ode_a1_table.py"
