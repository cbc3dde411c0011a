"""Statistics across seeds: summaries with t-based confidence intervals and paired tests.

Seeds are the unit of replication. Comparisons are paired by seed (the same seed gives both
models the same data and initialisation stream), tested with a paired t-test, and corrected for
the several baselines compared with one reference by Holm's step-down method. The Wilcoxon
signed-rank test is reported only where it can reach two-sided p < 0.05 at all: with ``n`` pairs
its smallest exact p-value is 2 / 2**n, which first drops below 0.05 at n = 6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

WILCOXON_MIN_N = 6
TTEST_MIN_N = 3  # no p-value from fewer paired seeds (1 degree of freedom says nothing)


def summarise(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean, sample std (ddof 1), n, and the t-distribution CI half-width at ``level``.

    Non-finite values are dropped (and counted in ``n_nonfinite``). With one value the std and
    CI are NaN.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    finite = x[np.isfinite(x)]
    n = finite.size
    mean = float(finite.mean()) if n else float("nan")
    std = float(finite.std(ddof=1)) if n > 1 else float("nan")
    half = (
        float(sps.t.ppf(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    )
    return {
        "n": n,
        "n_nonfinite": int(x.size - n),
        "mean": mean,
        "std": std,
        "ci95": half,
        "ci_low": mean - half,
        "ci_high": mean + half,
    }


def summarise_log(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Geometric mean and its CI: the t-interval of log(values), back-transformed (never clipped).

    For positive, skewed errors. Non-positive or non-finite values are dropped (counted in
    ``n_nonfinite``); the interval is multiplicative around the geometric mean.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    s = summarise(logs, level)
    return {
        "gmean": math.exp(s["mean"]) if s["n"] else float("nan"),
        "gci_low": math.exp(s["ci_low"]) if s["n"] > 1 else float("nan"),
        "gci_high": math.exp(s["ci_high"]) if s["n"] > 1 else float("nan"),
        "log_std": s["std"],
    }


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaNs stay NaN."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[k]))
        out[k] = running
    return out


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float | str]:
    """Paired t-test and (where meaningful) Wilcoxon signed-rank test of ``a - b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length; got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    d = a - b
    res: dict[str, float | str] = {
        "n": n,
        "mean_diff": float(d.mean()) if n else float("nan"),
        "t_stat": float("nan"),
        "p_ttest": float("nan"),
        "p_wilcoxon": float("nan"),
        "note": "",
    }
    notes = []
    if n < TTEST_MIN_N:
        notes.append(f"no p-value: t-test needs >= {TTEST_MIN_N} paired seeds, have {n}")
    elif np.all(d == d[0]):
        notes.append("differences are constant: t-test undefined")
    else:
        t = sps.ttest_rel(a, b)
        res["t_stat"], res["p_ttest"] = float(t.statistic), float(t.pvalue)
    if n < WILCOXON_MIN_N:
        notes.append(f"no Wilcoxon test: n={n} < {WILCOXON_MIN_N} cannot reach p<0.05")
    elif np.all(d == 0):
        notes.append("no Wilcoxon test: all differences are zero")
    else:
        res["p_wilcoxon"] = float(sps.wilcoxon(a, b).pvalue)
    res["note"] = "; ".join(notes)
    return res


def compare_with_reference(
    frame: pd.DataFrame,
    *,
    reference: str,
    metrics: Sequence[str],
    group_cols: Sequence[str] = ("system", "condition"),
    model_col: str = "model",
    seed_col: str = "seed",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired tests of ``reference`` against every other model, per group and metric.

    One row per (group, metric, model). Holm's correction runs over the models compared with
    the reference within one group and metric (one family per question "is the reference
    different from the baselines on this metric here?"). ``significant`` uses the Holm p-value.
    """
    rows = []
    for keys, grp in frame.groupby(list(group_cols), sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        ref = grp[grp[model_col] == reference].set_index(seed_col)
        others = sorted(m for m in grp[model_col].unique() if m != reference)
        for metric in metrics:
            family = []
            for other in others:
                oth = grp[grp[model_col] == other].set_index(seed_col)
                seeds = sorted(set(ref.index) & set(oth.index))
                test = paired_test(
                    ref.loc[seeds, metric].to_numpy(float), oth.loc[seeds, metric].to_numpy(float)
                )
                family.append(
                    {
                        **dict(zip(group_cols, keys, strict=True)),
                        "metric": metric,
                        "reference": reference,
                        "model": other,
                        **test,
                    }
                )
            adjusted = holm([r["p_ttest"] for r in family])
            for r, p_adj in zip(family, adjusted, strict=True):
                r["p_holm"] = float(p_adj)
                r["significant"] = bool(np.isfinite(p_adj) and p_adj < alpha)
            rows.extend(family)
    columns = [
        *group_cols,
        "metric",
        "reference",
        "model",
        "n",
        "mean_diff",
        "t_stat",
        "p_ttest",
        "p_holm",
        "significant",
        "p_wilcoxon",
        "note",
    ]
    return pd.DataFrame(rows, columns=columns)


def summary_table(
    frame: pd.DataFrame,
    *,
    metrics: Sequence[str],
    group_cols: Sequence[str] = ("system", "condition", "model"),
) -> pd.DataFrame:
    """Long table: one row per group and metric with mean, std, ci95 (t-based) and n."""
    rows = []
    for keys, grp in frame.groupby(list(group_cols), sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        for metric in metrics:
            rows.append(
                {
                    **dict(zip(group_cols, keys, strict=True)),
                    "metric": metric,
                    **summarise(grp[metric].to_numpy(float)),
                }
            )
    return pd.DataFrame(rows)
