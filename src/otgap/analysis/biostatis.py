"""BiostatisV6 comparisons that can show a difference: the lr-matched AdamW arm, the lr sweep and
the equivalence test (rules ``biostatis_matched_lr``, ``biostatis_arms``, ``biostatis_table``).

At its authors' defaults BiostatisV6's update is AdamW's times the gain ``h e`` (plus memory and
modulated-gradient terms that the EoS runs record as ~1e-4 of the Adam term), so "V6 vs AdamW at the
same nominal lr" compares two step sizes as much as two optimizers. Here:

- :func:`matched_lr`: the rule by which the lr-matched AdamW arm gets its lr,
  ``lr_matched = lr_V6 * mean over V6's seeds of its run-mean effective gain`` (the gain averaged
  over parameter entries and evaluations, ``run.json``'s ``effective_step.effective_gain``).
- :func:`arm_settings`: an arm is an EoS run's settings with another optimizer/lr and no
  curvature analysis (training and scoring only; the trajectory does not depend on the curvature
  measurements, which use no training randomness).
- :func:`tost_paired`: two one-sided paired t-tests against a margin stated before the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

#: how the matched arm's lr is computed (written into the matched-lr file)
MATCH_RULE = (
    "lr_matched = lr_V6 * mean over V6 seeds of effective_step.effective_gain "
    "(h e averaged over parameter entries, then over evaluations)"
)


def matched_lr(v6_runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The lr-matched AdamW arm's lr from BiostatisV6 runs' ``run.json`` contents (one per seed).

    All runs must share one lr and carry ``effective_step`` (recorded by the EoS stage for
    BiostatisV6 runs); raises a clear error otherwise.
    """
    if not v6_runs:
        raise ValueError("matched lr: no BiostatisV6 run.json given")
    lrs = {float(r["lr"]) for r in v6_runs}
    if len(lrs) != 1:
        raise ValueError(
            f"matched lr: the BiostatisV6 runs have several lrs {sorted(lrs)}; give one"
        )
    gains, seeds = [], []
    for r in v6_runs:
        eff = r.get("effective_step")
        if not isinstance(eff, Mapping) or "effective_gain" not in eff:
            raise KeyError(
                "matched lr: a BiostatisV6 run.json lacks effective_step.effective_gain (made by "
                "the EoS stage since the gain is recorded); rerun its eos_train job"
            )
        gains.append(float(eff["effective_gain"]))
        seeds.append(int(r["settings"]["seed"]))
    lr = lrs.pop()
    gain = float(np.mean(gains))
    return {
        "v6_lr": lr,
        "effective_gain": gain,
        "gain_per_seed": dict(zip(map(str, seeds), gains, strict=True)),
        "matched_lr": lr * gain,
        "rule": MATCH_RULE,
    }


#: settings an arm switches off: no curvature, no batch sharpness
NO_CURVATURE = {"eig_every": 0, "batch_sharpness_batches": 0}


def arm_settings(
    base: Mapping[str, Any],
    optimizer: str,
    lr: float,
    optimizer_hyper: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An EoS run's settings (``run.json``'s ``settings``) with another optimizer and lr and no
    curvature analysis; everything else (data, model, loss, seed, epochs, batches) is kept."""
    out = dict(base)
    out.update(NO_CURVATURE)
    out["optimizer"] = str(optimizer)
    out["lr"] = float(lr)
    if optimizer_hyper is not None:
        out["optimizer_hyper"] = dict(optimizer_hyper)
    return out


def tost_paired(diff: Sequence[float], margin: float, alpha: float = 0.05) -> dict[str, Any]:
    """Equivalence of a paired difference to zero within ``+-margin`` by two one-sided t-tests.

    ``p = max(p_lower, p_upper)`` with ``p_lower`` testing ``mean <= -margin`` and ``p_upper``
    ``mean >= margin`` (t distribution, ``n - 1`` degrees of freedom); equivalent when
    ``p < alpha``, which is the same as the ``1 - 2 alpha`` interval lying inside the margins.
    Also the ``1 - alpha`` two-sided interval of the mean difference. Fewer than 2 finite values
    or zero spread: no test (p NaN, the reason in ``note``).
    """
    if not margin > 0:
        raise ValueError(f"equivalence margin must be positive, got {margin}")
    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = int(d.size)
    out: dict[str, Any] = {
        "n": n,
        "mean": float(d.mean()) if n else math.nan,
        "margin": float(margin),
        "p_tost": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "equivalent": False,
        "note": "",
    }
    if n < 2:
        out["note"] = f"no test: {n} paired value(s)"
        return out
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        out["note"] = "no test: the paired differences are all equal"
        return out
    se = sd / math.sqrt(n)
    df = n - 1
    mean = out["mean"]
    p_lower = float(sps.t.sf((mean + margin) / se, df))  # H0: mean <= -margin
    p_upper = float(sps.t.cdf((mean - margin) / se, df))  # H0: mean >= +margin
    half = float(sps.t.ppf(1.0 - alpha / 2.0, df)) * se
    out.update(
        p_tost=max(p_lower, p_upper),
        ci_low=mean - half,
        ci_high=mean + half,
        equivalent=bool(max(p_lower, p_upper) < alpha),
    )
    return out
