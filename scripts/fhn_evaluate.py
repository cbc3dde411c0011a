"""Score the trained sequence models of one (system, condition), every seed: interpolation,
extrapolation, rollouts (rule fhn_evaluate; one set of outputs per model and seed)."""

from otgap.io import read_npz, write_json, write_npz
from otgap.jobs import job
from otgap.metrics.forecast import REQUIRED_KEYS, as_numbers, evaluate_forecaster
from otgap.train.provenance import provenance
from otgap.train.sequence import load_sequence_model

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    s = dict(smk.params.settings)
    models, seeds = list(s["models"]), [int(x) for x in s["seeds"]]
    # inputs/outputs are ordered seed-major: for each seed, every model
    pairs = [(seed, m) for seed in seeds for m in models]
    data_by_seed = dict(zip(seeds, smk.input.data, strict=True))
    outputs = zip(
        pairs,
        smk.input.models,
        smk.output.metrics,
        smk.output.curves,
        smk.output.meta,
        strict=True,
    )
    cache = {}
    for (seed, expected), model_path, metrics_path, curves_path, meta_path in outputs:
        if seed not in cache:
            cache = {seed: read_npz(data_by_seed[seed], required=REQUIRED_KEYS)}
        name, model = load_sequence_model(model_path)
        if name != expected:
            raise ValueError(f"{model_path} holds model '{name}', expected '{expected}'")
        metrics, curves = evaluate_forecaster(
            model,
            cache[seed],
            vpt_threshold=float(s["vpt_threshold"]),
            keep_rollouts=int(s["keep_rollouts"]),
        )
        log(f"seed {seed} {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        write_json(metrics_path, as_numbers(metrics))
        write_npz(curves_path, **curves)
        write_json(
            meta_path,
            {
                "model": name,
                "seed": seed,
                "provenance": provenance({**s, "model": name, "seed": seed}),
            },
        )
