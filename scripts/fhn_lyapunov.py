"""Per-system properties of FitzHugh-Nagumo: largest Lyapunov exponent, attractor scale (rule fhn_lyapunov)."""

import numpy as np

from otgap.data.fhn import (
    CHAOS_THRESHOLD,
    attractor_orbit,
    attractor_std,
    lyapunov_exponent,
    system_params,
)
from otgap.io import write_json, write_npz
from otgap.jobs import job
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    system = smk.wildcards.system
    settings = dict(smk.params.lyapunov)
    lam = lyapunov_exponent(
        system,
        smk.params.params,
        t_total=float(settings["t_total"]),
        dt=float(settings["dt"]),
        seed=int(settings["seed"]),
    )
    scale = attractor_std(system, smk.params.params, seed=int(settings["seed"]))
    log(f"{system}: largest Lyapunov exponent {lam:+.5f}, attractor std (v, w) = {scale}")
    orbit, orbit_period = attractor_orbit(system, smk.params.params, seed=int(settings["seed"]))
    log(f"{system}: reference orbit of {len(orbit)} points, period {orbit_period:.3f}")
    write_npz(
        smk.output.npz,
        lyapunov=np.asarray(lam, dtype=np.float64),
        attractor_std=scale,
        attractor_orbit=orbit,
        attractor_period=np.asarray(orbit_period, dtype=np.float64),
    )
    meta = {
        "system": system,
        "params": system_params(system, smk.params.params),
        "lyapunov": lam,
        "chaotic": bool(lam > CHAOS_THRESHOLD),
        "attractor_std": scale,
        "attractor_period": orbit_period,
        "settings": settings,
        "provenance": provenance({"system": system, **settings, **smk.params.params}),
    }
    write_json(smk.output.meta, meta)
