"""Train one Edge-of-Stability run with sharpness tracking (rule eos_train)."""

from otgap.data.classification import dataset_provenance, load_dataset
from otgap.deps import job_identity
from otgap.jobs import job
from otgap.train.eos import EosSettings, train_eos, write_outputs
from otgap.train.loop import clear_checkpoint
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    data_params = dict(smk.params.data)
    settings = EosSettings.from_params(smk.params.settings)
    data = load_dataset(data_params.pop("name"), **data_params)
    log(
        f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test samples of shape "
        f"{data.input_shape}, {data.n_classes} classes"
    )
    # the checkpoint is resumed only by a job with the same settings, data and code
    identity = job_identity(
        {"settings": smk.params.settings, "data": smk.params.data}, smk.input.code
    )
    result = train_eos(
        data, settings, checkpoint_dir=smk.params.checkpoint_dir, log=log, identity=identity
    )
    s = result.summary
    log(
        f"{s['steps_done']}/{s['steps']} steps in {s['wall_seconds']:.1f} s, n_params={s['n_params']}, "
        f"threshold={s['threshold']:.4g}, diverged={s['diverged']}"
    )
    write_outputs(
        result,
        history=smk.output.history,
        snapshots=smk.output.snapshots,
        model=smk.output.model,
        run_json=smk.output.run_json,
        provenance=provenance(
            {"settings": smk.params.settings, "data": smk.params.data},
            dataset=dataset_provenance(data),
        ),
    )
    clear_checkpoint(smk.params.checkpoint_dir)
