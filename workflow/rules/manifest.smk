# Manifest of the run (the last rule): path, size and SHA-256 of every file under {R}/, so that
# two machines' runs can be compared file by file with `python -m otgap.manifest compare A B`.
# Output: {R}/manifest.tsv


def manifest_targets():
    return [f"{R}/manifest.tsv"]


def manifest_inputs():
    """Every other final artifact of the run: the manifest is written after all of them."""
    return [t for t in all_targets() if t not in manifest_targets()]


localrules:
    manifest,


rule manifest:
    input:
        **script_inputs("scripts/manifest.py", results=manifest_inputs()),
    output:
        tsv=f"{R}/manifest.tsv",
    log:
        f"{L}/manifest.log",
    threads: 1
    resources:
        **res("default"),
    params:
        root=R,
    script:
        "../../scripts/manifest.py"
