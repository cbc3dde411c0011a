"""The original's claims and one verdict per claim (rule paper_claims; claims in paper/claims.yaml).

Every claim is decided by one rule, :func:`verdict`, whose wording the methods section prints
(:data:`RULE_TEXT`). The evidence of a claim is a set of values, one per seed (or one estimate for a
deterministic quantity), with the value the claim says they exceed:

- ``fhn_pair``: per seed, x = log(metric[versus] / metric[model]) in the sparsest condition of the
  claim's range (paired: same seed, same data); the claim says x > 0.
- ``eos_ratio``: per seed, a late-phase median of sharpness / threshold; the claim says it is above
  ``margin``. One row per learning rate: runs at different learning rates are never pooled.
- ``lyapunov``: the system's largest Lyapunov exponent; the claim says it is above ``tolerance``.

The statistics are a one-sided one-sample t-test of the per-seed values against the claimed bound
(a paired t-test for ``fhn_pair``) and its power at the claim's standardised effect size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from otgap.config import merge, read_yaml
from otgap.paper.numbers import format_setting, format_value
from otgap.paper.tables import longtable_head
from otgap.tables.latex import tex_escape

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
SUBSTITUTE = "tested on substitute data"
UNTESTED = "untested"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, SUBSTITUTE, UNTESTED)

EVIDENCE_KINDS = ("fhn_pair", "eos_ratio", "lyapunov")
_REQUIRED = ("id", "claim", "where", "evidence", "test", "original_data", "original")
_REQUIRED_BY_KIND = {
    "fhn_pair": ("system", "model", "versus", "metric", "max_obs_fraction", "effect_size"),
    "eos_ratio": ("optimizer", "quantity", "margin", "effect_size"),
    "lyapunov": ("system", "tolerance"),
}

# The rule as the methods section prints it (LaTeX). Keep it in step with verdict() below.
RULE_TEXT = (
    "Each claim is decided by one rule, applied in this order. "
    "(1)~\\emph{untested}: this run has no result for the claim's condition (the table names the "
    "configuration of this project that runs it, or says that none does). "
    "(2)~For a deterministic quantity (the Lyapunov exponent) the claim holds when the estimate "
    "exceeds the stated tolerance. Otherwise the per-seed values $x_1,\\dots,x_n$ are tested "
    "against the claimed bound $x_0$ with a one-sided one-sample $t$-test (paired over seeds where "
    "two models are compared: $x_i = \\log(e_{\\text{baseline},i}/e_{\\text{Neural ODE},i})$, "
    "$x_0=0$) at $\\alpha = \\ClaimsAlpha$; the power is that of the same test at the claim's "
    "standardised effect size $d$ (mean over standard deviation of $x$) with $n$ seeds. "
    "(3)~\\emph{tested on substitute data}: the run used other data than the original (digits "
    "instead of PathMNIST); the table says which way the result leans, but a verdict on the "
    "original's data needs the configuration that uses them. "
    "(4)~\\emph{reproduced}: the test rejects, in the claimed direction. "
    "(5)~\\emph{not reproduced}: the opposite one-sided test rejects, or the test does not reject "
    "although its power reaches \\ClaimsPowerTarget. "
    "(6)~\\emph{inconclusive}: neither, with fewer than two seeds or power below "
    "\\ClaimsPowerTarget{} (the table gives $n$ and the power). A comparison of two A.1 models "
    "in which either cell is undertrained (more than 10\\% of its runs had their best validation "
    "epoch in the last 10\\% of the epoch bound) is inconclusive whatever its test says."
)


class ClaimsError(ValueError):
    """A claims file or its evidence that cannot be used (the message names the key and file)."""


# --------------------------------------------------------------------------------------------
# The claims file
# --------------------------------------------------------------------------------------------


def load_claims(path: str | Path) -> dict[str, Any]:
    """Read and check ``paper/claims.yaml``: every claim has the keys its evidence needs."""
    data = read_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("claims"), list):
        raise ClaimsError(f"{path}: expected a mapping with a list 'claims'")
    for key in ("alpha", "power_target"):
        value = data.get(key)
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ClaimsError(f"{path}: '{key}' must be a number in (0, 1), got {value!r}")
    seen: set[str] = set()
    for i, claim in enumerate(data["claims"]):
        where = f"{path}: claims[{i}]"
        if not isinstance(claim, Mapping):
            raise ClaimsError(f"{where}: expected a mapping")
        missing = [k for k in _REQUIRED if k not in claim]
        kind = claim.get("evidence")
        if kind not in EVIDENCE_KINDS:
            raise ClaimsError(f"{where}: 'evidence' must be one of {EVIDENCE_KINDS}, got {kind!r}")
        missing += [k for k in _REQUIRED_BY_KIND[kind] if k not in claim]
        if missing:
            raise ClaimsError(f"{where} ({claim.get('id', '?')}): missing key(s) {missing}")
        if claim["id"] in seen:
            raise ClaimsError(f"{where}: id '{claim['id']}' used twice")
        seen.add(claim["id"])
        if not isinstance(claim["original"], Mapping):
            raise ClaimsError(f"{where}: 'original' must map labels to config key paths")
    return dict(data)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def t_power(n: int, effect_size: float, alpha: float) -> float:
    """Power of the one-sided one-sample t-test at level ``alpha`` with ``n`` values when the true
    standardised effect (mean - bound) / sd is ``effect_size`` (noncentral t; NaN for n < 2)."""
    if n < 2 or not math.isfinite(effect_size):
        return math.nan
    df = n - 1
    critical = stats.t.ppf(1 - alpha, df)
    return float(stats.nct.sf(critical, df, effect_size * math.sqrt(n)))


@dataclass
class TestResult:
    """A one-sided test of per-seed values (or one deterministic estimate) against a bound."""

    n: int
    estimate: float  # mean of the values (or the estimate itself)
    bound: float  # the claimed bound x0
    p_claim: float = math.nan  # H1: mean > bound
    p_opposite: float = math.nan  # H1: mean < bound
    power: float = math.nan
    deterministic: bool = False
    values: list[float] = field(default_factory=list)

    @property
    def test(self) -> str:
        return "estimate" if self.deterministic else "one-sided t"


def one_sided_test(
    values: Sequence[float], bound: float, *, effect_size: float, alpha: float
) -> TestResult:
    """One-sample one-sided t-tests of ``values`` against ``bound`` in both directions, and power."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    result = TestResult(n=n, estimate=float(x.mean()) if n else math.nan, bound=bound,
                        values=[float(v) for v in x])  # fmt: skip
    if n >= 2 and float(np.std(x, ddof=1)) > 0:
        sd = float(np.std(x, ddof=1))
        t = (result.estimate - bound) / (sd / math.sqrt(n))
        result.p_claim = float(stats.t.sf(t, n - 1))
        result.p_opposite = float(stats.t.cdf(t, n - 1))
    result.power = t_power(n, effect_size, alpha)
    return result


def estimate_test(value: float, tolerance: float) -> TestResult:
    """A deterministic estimate against its tolerance (n = 1, no p-value)."""
    return TestResult(n=1 if math.isfinite(value) else 0, estimate=value, bound=tolerance,
                      deterministic=True, values=[value] if math.isfinite(value) else [])  # fmt: skip


# --------------------------------------------------------------------------------------------
# The verdict rule
# --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    verdict: str
    reason: str
    lean: str = ""  # for substitute data: "supports", "opposes" or "undecided"


def _lean(result: TestResult, alpha: float, power_target: float) -> str:
    if result.deterministic:
        return "supports" if result.estimate > result.bound else "opposes"
    if result.p_claim < alpha:
        return "supports"
    if result.p_opposite < alpha or (result.power >= power_target and result.n >= 2):
        return "opposes"
    return "undecided"


def verdict(
    result: TestResult | None,
    *,
    alpha: float,
    power_target: float,
    substitute: str | None = None,
    runs_elsewhere: Sequence[str] = (),
) -> Verdict:
    """The one rule (printed as :data:`RULE_TEXT`).

    ``result`` None (or with n = 0): the run has no result for the claim -> untested, naming the
    configurations in ``runs_elsewhere``. ``substitute``: the data this run used in place of the
    original's (e.g. ``"digits for pathmnist"``), None when they are the same.
    """
    if result is None or result.n == 0:
        where = (
            "run by " + ", ".join(f"config/{c}.yaml" for c in runs_elsewhere)
            if runs_elsewhere
            else "no configuration of this project runs it"
        )
        return Verdict(UNTESTED, f"condition not in this run; {where}")
    lean = _lean(result, alpha, power_target)
    if substitute:
        says = {"supports": "supports the claim", "opposes": "opposes the claim"}
        return Verdict(
            SUBSTITUTE, f"{substitute}; the result {says.get(lean, 'decides nothing')}", lean
        )
    if result.deterministic:
        if lean == "supports":
            return Verdict(REPRODUCED, "estimate above the tolerance", lean)
        return Verdict(NOT_REPRODUCED, "estimate not above the tolerance", lean)
    if result.n < 2 or not math.isfinite(result.p_claim):
        return Verdict(INCONCLUSIVE, f"n = {result.n}: no test", lean)
    if result.p_claim < alpha:
        return Verdict(REPRODUCED, "significant in the claimed direction", lean)
    if result.p_opposite < alpha:
        return Verdict(NOT_REPRODUCED, "significant against the claim", lean)
    if result.power >= power_target:
        return Verdict(NOT_REPRODUCED, "not significant at adequate power", lean)
    return Verdict(INCONCLUSIVE, "not significant, power too low", lean)


# --------------------------------------------------------------------------------------------
# Evidence from the run's aggregate tables
# --------------------------------------------------------------------------------------------


def _conditions_of(cfg: Mapping[str, Any], system: str) -> list[Mapping[str, Any]]:
    fhn = cfg.get("fhn") or {}
    conds = list(fhn.get("conditions") or [])
    names = (fhn.get("system_conditions") or {}).get(system)
    if names is not None:
        conds = [c for c in conds if c.get("name") in names]
    return conds


def claim_condition(claim: Mapping[str, Any], cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The condition of ``cfg`` that decides an fhn claim: the sparsest in the claim's range of
    observed fractions (ties: the larger jitter, then the name), None when the config has none."""
    fhn = cfg.get("fhn") or {}
    if claim["system"] not in (fhn.get("systems") or []):
        return None
    models = fhn.get("models") or []
    if claim["model"] not in models or claim["versus"] not in models:
        return None
    lo = float(claim.get("min_obs_fraction", 0.0))
    hi = float(claim["max_obs_fraction"])
    inside = [
        c
        for c in _conditions_of(cfg, claim["system"])
        if lo <= float(c.get("obs_fraction", 1.0)) <= hi and float(c.get("jitter", 0.0)) > 0
    ]
    if not inside:
        return None
    return min(inside, key=lambda c: (float(c.get("obs_fraction", 1.0)), -float(c.get("jitter", 0)), c["name"]))  # fmt: skip


def config_runs(claim: Mapping[str, Any], cfg: Mapping[str, Any]) -> bool:
    """Whether a (merged) config runs the condition that decides ``claim``."""
    kind = claim["evidence"]
    if kind == "fhn_pair":
        return claim_condition(claim, cfg) is not None
    if kind == "eos_ratio":
        return any(o.get("name") == claim["optimizer"] for o in (cfg.get("eos") or {}).get("optimizers") or [])  # fmt: skip
    return claim["system"] in ((cfg.get("fhn") or {}).get("systems") or [])


def configs_running(
    claim: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Names of the given configs (name -> merged config) that run ``claim``'s condition, the
    smallest first (claims, quick, then the paper config and the rest), at most two."""
    order = {"claims": 0, "quick": 1, "config": 2}
    names = [name for name, cfg in configs.items() if config_runs(claim, cfg)]
    return sorted(names, key=lambda n: (order.get(n, 3), n))[:2]


def project_configs(config_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every config of the project merged over config.yaml, by file stem (config.yaml as its run)."""
    config_dir = Path(config_dir)
    base = read_yaml(config_dir / "config.yaml") or {}
    out = {"config": base}
    for path in sorted(config_dir.glob("*.yaml")):
        if path.name != "config.yaml":
            out[path.stem] = merge(base, read_yaml(path) or {})
    return out


def fhn_pair_evidence(metrics, claim: Mapping[str, Any], cfg: Mapping[str, Any], *, alpha: float):
    """(TestResult or None, condition name) from aggregate/fhn/metrics.csv (one row per run)."""
    cond = claim_condition(claim, cfg)
    if cond is None:
        return None, None
    metric = claim["metric"]
    if metric not in metrics.columns:
        raise ClaimsError(
            f"claim {claim['id']}: column '{metric}' not in aggregate/fhn/metrics.csv"
        )
    rows = metrics[(metrics["system"] == claim["system"]) & (metrics["condition"] == cond["name"])]
    a = rows[rows["model"] == claim["model"]].set_index("seed")[metric]
    b = rows[rows["model"] == claim["versus"]].set_index("seed")[metric]
    seeds = sorted(set(a.index) & set(b.index))
    x = [
        math.log(float(b[s]) / float(a[s]))
        for s in seeds
        if float(a[s]) > 0 and float(b[s]) > 0 and math.isfinite(float(a[s]) * float(b[s]))
    ]
    if not x:
        return None, cond["name"]
    return one_sided_test(x, 0.0, effect_size=float(claim["effect_size"]), alpha=alpha), cond[
        "name"
    ]


def undertrained_cells(metrics, claim: Mapping[str, Any], condition: str | None) -> list[str]:
    """The claim's two A.1 cells (model, versus) in ``condition`` that are undertrained, by the
    tables' rule (otgap.analysis.fhn.convergence); [] where metrics.csv has no epoch columns."""
    from otgap.analysis.fhn import convergence

    if metrics is None or condition is None:
        return []
    rows = metrics[(metrics["system"] == claim["system"]) & (metrics["condition"] == condition)]
    rows = rows[rows["model"].isin([claim["model"], claim["versus"]])]
    conv = convergence(rows)
    return sorted(f"{m}/{condition}" for m in conv.loc[conv["undertrained"], "model"])


def eos_ratio_evidence(
    summary, claim: Mapping[str, Any], *, alpha: float
) -> list[tuple[Any, Any, TestResult]]:
    """[(dataset, lr, TestResult, quantity)] per dataset and learning rate of ``claim``'s
    optimizer (never pooled over learning rates) from aggregate/eos/summary.csv (one row per run).
    The claim's ``quantity`` decides where a configuration measured it; a configuration without
    it falls back to ``fallback_quantity`` (named in the evidence)."""
    rows = summary[summary["optimizer"] == claim["optimizer"]]
    candidates = [claim["quantity"], claim.get("fallback_quantity")]
    candidates = [q for q in candidates if q is not None]
    if not any(q in rows.columns for q in candidates):
        raise ClaimsError(f"claim {claim['id']}: none of {candidates} in aggregate/eos/summary.csv")

    def finite(g, q):
        if q not in g.columns:
            return []
        return [float(v) for v in g[q] if v is not None and math.isfinite(float(v))]

    out = []
    for (dataset, lr), g in rows.groupby(["dataset", "lr"], sort=True):
        quantity = next((q for q in candidates if finite(g, q)), candidates[0])
        result = one_sided_test(finite(g, quantity), float(claim["margin"]),
                                effect_size=float(claim["effect_size"]), alpha=alpha)  # fmt: skip
        out.append((dataset, lr, result, quantity))
    return out


def lyapunov_evidence(path: str | Path | None, claim: Mapping[str, Any]) -> TestResult | None:
    if path is None or not Path(path).is_file():
        return None
    value = json.loads(Path(path).read_text()).get("lyapunov")
    if value is None:
        return None
    return estimate_test(float(value), float(claim["tolerance"]))


# --------------------------------------------------------------------------------------------
# Settings of the original, the table
# --------------------------------------------------------------------------------------------


def _lookup(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def describe_setting(value: Any) -> str:
    """A config value in a few words: lists of conditions/optimizers by their parts."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return format_setting(value).strip("$")
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {describe_setting(v)}" for k, v in value.items())
    if isinstance(value, Sequence):
        items = list(value)
        if items and all(isinstance(i, Mapping) and "name" in i for i in items):
            parts = []
            for item in items:
                if "obs_fraction" in item:
                    obs = item.get("obs_fraction")
                    shown = f"{float(obs) * 100:g}%" if isinstance(obs, (int, float)) else "n/a"
                    parts.append(f"{item['name']} ({shown} observed)")
                else:
                    extra = {
                        k: v
                        for k, v in item.items()
                        if k not in ("name", "hyper", "models", "losses")
                    }
                    parts.append(f"{item['name']} ({describe_setting(extra)})")
            return "; ".join(parts)
        if all(isinstance(i, int) for i in items) and items == list(
            range(items[0], items[0] + len(items))
        ):
            return f"{len(items)} ({items[0]}--{items[-1]})"
        return ", ".join(describe_setting(i) for i in items)
    return str(value)


def original_settings(claim: Mapping[str, Any], original_cfg: Mapping[str, Any]) -> str:
    """``label: value`` pairs of the original code's settings for one claim (LaTeX-escaped)."""
    parts = []
    for label, dotted in claim["original"].items():
        parts.append(
            f"{tex_escape(label)}: {tex_escape(describe_setting(_lookup(original_cfg, str(dotted))))}"
        )
    return "; ".join(parts)


@dataclass
class ClaimRow:
    claim: Mapping[str, Any]
    label: str  # the claim id, with the learning rate where a claim has one row per lr
    result: TestResult | None
    verdict: Verdict
    condition: str = ""  # what in this run decided it (condition, optimizer at lr)
    quantity: str = ""
    original: str = ""


def _num(x: float, sig: int = 3) -> str:
    text = format_value(x, sig)
    return f"${text}$" if text != "n/a" else text


def evidence_text(row: ClaimRow) -> str:
    r = row.result
    if r is None or r.n == 0:
        return "no result in this run"
    where = tex_escape(row.condition)
    if r.deterministic:
        return f"{where}: estimate {_num(r.estimate)} (tolerance {format_setting(r.bound)}), n = 1"
    stat = (
        "mean log ratio"
        if row.claim["evidence"] == "fhn_pair"
        else f"mean {tex_escape(row.quantity)}"
    )
    p = f"p = {_num(r.p_claim, 2)}" if math.isfinite(r.p_claim) else "no test (n < 2 or no spread)"
    return (
        f"{where}: {stat} {_num(r.estimate)} vs {format_setting(r.bound)}; $n = {r.n}$; "
        f"{p}; power {_num(r.power, 2)} at $d = {format_setting(row.claim['effect_size'])}$"
    )


def build_rows(
    spec: Mapping[str, Any],
    *,
    cfg: Mapping[str, Any],
    original_cfg: Mapping[str, Any],
    configs: Mapping[str, Mapping[str, Any]],
    fhn_metrics=None,
    eos_summary=None,
    lyapunov_path: str | Path | None = None,
) -> list[ClaimRow]:
    """One or more rows per claim of ``spec`` with its evidence from this run and its verdict."""
    alpha = float(spec["alpha"])
    target = float(spec["power_target"])
    others = {k: v for k, v in configs.items() if v.get("run") != cfg.get("run")}
    rows: list[ClaimRow] = []
    for claim in spec["claims"]:
        elsewhere = configs_running(claim, others)
        orig = original_settings(claim, original_cfg)
        kind = claim["evidence"]
        original_data = str(claim["original_data"])

        here = config_runs(claim, cfg)

        def decide(result, substitute=None, here=here, elsewhere=elsewhere):
            if here and (result is None or result.n == 0):
                return Verdict(UNTESTED, "its condition is in this run's configuration, but the "
                                         "run's tables hold no result for it")  # fmt: skip
            return verdict(result, alpha=alpha, power_target=target, substitute=substitute,
                           runs_elsewhere=elsewhere)  # fmt: skip

        if kind == "fhn_pair":
            result, cond = (None, None)
            if fhn_metrics is not None:
                result, cond = fhn_pair_evidence(fhn_metrics, claim, cfg, alpha=alpha)
            decided = decide(result)
            late = undertrained_cells(fhn_metrics, claim, cond) if result is not None else []
            if late and decided.verdict in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE):
                decided = Verdict(INCONCLUSIVE, "undertrained: " + ", ".join(late))
            rows.append(ClaimRow(claim, claim["id"], result, decided,
                                 f"{claim['system']}/{cond}" if cond else "", claim["metric"], orig))  # fmt: skip
        elif kind == "lyapunov":
            result = lyapunov_evidence(lyapunov_path, claim) if config_runs(claim, cfg) else None
            rows.append(ClaimRow(claim, claim["id"], result, decide(result), claim["system"], "lyapunov", orig))  # fmt: skip
        else:
            found = (
                [] if eos_summary is None else eos_ratio_evidence(eos_summary, claim, alpha=alpha)
            )
            if not found:
                rows.append(
                    ClaimRow(claim, claim["id"], None, decide(None), "", claim["quantity"], orig)
                )
            for dataset, lr, result, quantity in found:
                substitute = None
                if original_data != "same" and str(dataset) != original_data:
                    substitute = f"{dataset} instead of {original_data}"
                label = claim["id"] + (f" (lr {format_setting(lr)})" if len(found) > 1 else "")
                rows.append(ClaimRow(claim, label, result, decide(result, substitute),
                                     f"{dataset}, {claim['optimizer']} lr {format_setting(lr)}",
                                     quantity, orig))  # fmt: skip
    return rows


def verdict_cell(v: Verdict) -> str:
    text = f"\\textbf{{{tex_escape(v.verdict)}}}"
    if v.verdict == SUBSTITUTE:
        return f"{text} (leans: {tex_escape(v.lean)})"
    if v.verdict == UNTESTED or v.reason.startswith("undertrained"):
        return f"{text} ({tex_escape(v.reason)})"
    return text


def claims_table(rows: Iterable[ClaimRow], *, caption: str, label: str = "tab:claims") -> str:
    """The claims table (LaTeX): claim and source, original's settings, evidence, verdict."""
    # a longtable: it breaks across pages, however many rows the claims file and run give
    header = (
        "Claim (where the original makes it) & Original code's settings & Evidence in this run "
        "(number, $n$, test) & Verdict \\\\"
    )
    colspec = (
        "@{}"
        + "".join(
            f">{{\\raggedright\\arraybackslash}}p{{\\{w}}}"
            for w in ("ColM", "ColM", "ColL", "ColXS")
        )
        + "@{}"
    )
    lines = longtable_head(colspec, caption, label, header)
    previous = None
    for row in rows:
        claim = row.claim
        if claim["id"] == previous:  # another learning rate of the same claim: no repeats
            first, original = f"\\textbf{{{tex_escape(row.label)}}} (as above)", ""
            if lines[-1] == "\\addlinespace":
                lines.pop()
        else:
            first = (
                f"\\textbf{{{tex_escape(row.label)}}} {claim['claim']} "
                f"\\emph{{({tex_escape(claim['where'])})}}"
            )
            original = row.original
        previous = claim["id"]
        lines.append(
            f"{first} & {original} & {evidence_text(row)} & {verdict_cell(row.verdict)} \\\\"
        )
        lines.append("\\addlinespace")
    if lines[-1] == "\\addlinespace":
        lines.pop()
    lines += ["\\end{longtable}", "}", ""]
    return "\n".join(lines)


def rows_frame(rows: Iterable[ClaimRow]):
    """The verdicts as a table (claims.csv beside the .tex)."""
    import pandas as pd

    out = []
    for row in rows:
        r = row.result
        out.append({
            "label": row.label, "claim_id": row.claim["id"], "verdict": row.verdict.verdict,
            "reason": row.verdict.reason, "lean": row.verdict.lean, "condition": row.condition,
            "quantity": row.quantity, "n": r.n if r else 0,
            "estimate": r.estimate if r else math.nan, "bound": r.bound if r else math.nan,
            "p": r.p_claim if r else math.nan, "power": r.power if r else math.nan,
            "test": r.test if r else "",
        })  # fmt: skip
    return pd.DataFrame(out)
