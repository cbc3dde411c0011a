# Data stage: FitzHugh-Nagumo simulation with irregular observation masks (Appendix A.1 data).
# MedMNIST downloads live with the Edge-of-Stability rules (eos.smk); MNIST and CIFAR-10 downloads
# (for the other systems' own benchmarks) are the local rules at the end of this file.


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
    # the longest chain (data, training, evaluation, then the paper) starts first
    priority: 10
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
    # the longest chain (data, training, evaluation, then the paper) starts first
    priority: 10
    threads: 1
    resources:
        **res("fhn_data"),
    params:
        params=fhn_system_params,
        condition=fhn_condition,
        dataset=FHN["dataset"],
    script:
        "../../scripts/fhn_data.py"


# MNIST (IDX, gzip) and CIFAR-10 (python archive): fetched and verified by otgap.data.mnist /
# otgap.data.cifar10 through otgap.data.fetch. Local rules (they need the network, not a node).
# Outputs are flagged update(): Snakemake then never deletes an existing file before or after the
# job (a forced rerun or a params change would otherwise remove a user's copy); the script keeps a
# verified file and moves a wrong one aside to <name>.bad. One job per MNIST file, so a failed
# download cannot take the other, verified files with it.
# No library sources as inputs: editing code must not re-fetch the data; jobs that read the files
# take them as ancient(), e.g. input: ancient(list(MNIST_PATHS.values())), ancient(CIFAR10_ARCHIVE_PATH),
# and pass the folder (MNIST_DIR, CIFAR10_DIR) as the loader's root.
DATA_ROOT = config["data"]["root"]
MNIST_DIR = f"{DATA_ROOT}/mnist"
MNIST_PATHS = {
    "train_images": f"{MNIST_DIR}/train-images-idx3-ubyte.gz",
    "train_labels": f"{MNIST_DIR}/train-labels-idx1-ubyte.gz",
    "test_images": f"{MNIST_DIR}/t10k-images-idx3-ubyte.gz",
    "test_labels": f"{MNIST_DIR}/t10k-labels-idx1-ubyte.gz",
}
CIFAR10_DIR = f"{DATA_ROOT}/cifar10"
CIFAR10_ARCHIVE_PATH = f"{CIFAR10_DIR}/cifar-10-python.tar.gz"


localrules:
    mnist_download,
    cifar10_download,


rule mnist_download:
    output:
        update(f"{MNIST_DIR}/{{mnist_file}}"),
    log:
        f"{L}/data/mnist/{{mnist_file}}.log",
    wildcard_constraints:
        mnist_file=r"(train|t10k)-(images-idx3|labels-idx1)-ubyte\.gz",
    threads: 1
    resources:
        **res("default"),
    params:
        dataset="mnist",
        timeout=120,
    script:
        "../../scripts/data_download.py"


rule cifar10_download:
    output:
        update(CIFAR10_ARCHIVE_PATH),
    log:
        f"{L}/data/cifar10/download.log",
    threads: 1
    resources:
        **res("default"),
    params:
        dataset="cifar10",
        timeout=300,
    script:
        "../../scripts/data_download.py"
