"""Score one trained sequence model: interpolation, extrapolation, rollouts (rule fhn_evaluate)."""

from otgap.io import read_npz, write_json, write_npz
from otgap.jobs import job
from otgap.metrics.forecast import REQUIRED_KEYS, as_numbers, evaluate_forecaster
from otgap.train.provenance import provenance
from otgap.train.sequence import load_sequence_model

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    data = read_npz(smk.input.data, required=REQUIRED_KEYS)
    name, model = load_sequence_model(smk.input.model)
    metrics, curves = evaluate_forecaster(
        model, data, vpt_threshold=float(s["vpt_threshold"]), keep_rollouts=int(s["keep_rollouts"])
    )
    log(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    write_json(smk.output.metrics, as_numbers(metrics))
    write_npz(smk.output.curves, **curves)
    write_json(smk.output.meta, {"model": name, "provenance": provenance(s)})
