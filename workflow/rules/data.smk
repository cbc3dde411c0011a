# Data stage: FitzHugh-Nagumo simulation with irregular observation masks (Appendix A.1 data).
# MedMNIST downloads live with the Edge-of-Stability rules (eos.smk).


rule fhn_lyapunov:
    input:
        **script_inputs("scripts/fhn_lyapunov.py"),
    output:
        npz=f"{R}/data/fhn/system={{system}}/lyapunov.npz",
        meta=f"{R}/data/fhn/system={{system}}/lyapunov.json",
    log:
        f"{L}/data/fhn/system={{system}}/lyapunov.log",
    benchmark:
        f"{L}/benchmarks/data/fhn/system={{system}}/lyapunov.tsv"
    wildcard_constraints:
        system=_system_pattern,
    threads: 1
    resources:
        **res("fhn_data"),
    params:
        params=fhn_system_params,
        lyapunov=FHN["lyapunov"],
    script:
        "../../scripts/fhn_lyapunov.py"


rule fhn_dataset:
    input:
        **script_inputs("scripts/fhn_data.py"),
        lyapunov=f"{R}/data/fhn/system={{system}}/lyapunov.npz",
    output:
        npz=f"{R}/data/fhn/system={{system}}/condition={{condition}}/seed={{seed}}/dataset.npz",
        meta=f"{R}/data/fhn/system={{system}}/condition={{condition}}/seed={{seed}}/dataset.json",
    log:
        f"{L}/data/fhn/system={{system}}/condition={{condition}}/seed={{seed}}/dataset.log",
    benchmark:
        f"{L}/benchmarks/data/fhn/system={{system}}/condition={{condition}}/seed={{seed}}/dataset.tsv"
    wildcard_constraints:
        system=_system_pattern,
        condition=_cond_pattern,
        seed=r"\d+",
    threads: 1
    resources:
        **res("fhn_data"),
    params:
        params=fhn_system_params,
        condition=fhn_condition,
        dataset=FHN["dataset"],
    script:
        "../../scripts/fhn_data.py"
