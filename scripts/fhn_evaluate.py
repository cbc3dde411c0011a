"""Score the trained sequence models of one dataset: interpolation, extrapolation, rollouts
(rule fhn_evaluate; one job per system x condition x seed, one set of outputs per model)."""

from otgap.io import read_npz, write_json, write_npz
from otgap.jobs import job
from otgap.metrics.forecast import REQUIRED_KEYS, as_numbers, evaluate_forecaster
from otgap.train.provenance import provenance
from otgap.train.sequence import load_sequence_model

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    data = read_npz(smk.input.data, required=REQUIRED_KEYS)
    outputs = zip(
        s["models"], smk.input.models, smk.output.metrics, smk.output.curves, smk.output.meta,
        strict=True,
    )
    for expected, model_path, metrics_path, curves_path, meta_path in outputs:
        name, model = load_sequence_model(model_path)
        if name != expected:
            raise ValueError(f"{model_path} holds model '{name}', expected '{expected}'")
        metrics, curves = evaluate_forecaster(
            model,
            data,
            vpt_threshold=float(s["vpt_threshold"]),
            keep_rollouts=int(s["keep_rollouts"]),
        )
        log(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        write_json(metrics_path, as_numbers(metrics))
        write_npz(curves_path, **curves)
        write_json(meta_path, {"model": name, "provenance": provenance({**s, "model": name})})
