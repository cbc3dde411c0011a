"""What was run: this run's settings beside the paper config's and the original code's, and what
the run cost (rule paper_scope).

The three configurations are this run's merged config, config/config.yaml (the paper-scale run)
and config/original.yaml merged over config/config.yaml (the original code's settings; never an
overlay such as original_quick). The cost comes from the run's own Snakemake benchmark files
(logs/<run>/benchmarks/**.tsv: wall seconds, peak memory and CPU seconds of every job).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from otgap.paper.claims import describe_setting
from otgap.paper.macros import MacroSet
from otgap.paper.numbers import format_value
from otgap.paper.tables import longtable_head
from otgap.tables.latex import tex_escape


def _get(cfg: Mapping[str, Any] | None, dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _conditions(cfg: Mapping[str, Any]) -> str:
    conds = _get(cfg, "fhn.conditions") or []
    per_system = _get(cfg, "fhn.system_conditions") or {}
    text = "; ".join(f"{c['name']} ({percent(c.get('obs_fraction', 1.0))} observed)" for c in conds)
    if per_system:
        text += " [" + "; ".join(f"{s}: {', '.join(v)}" for s, v in per_system.items()) + "]"
    return text


def percent(fraction: Any) -> str:
    """0.3 -> '30%' (LaTeX-safe after tex_escape), 'n/a' when missing."""
    try:
        return f"{float(fraction) * 100:g}%"
    except (TypeError, ValueError):
        return "n/a"


def _optimizers(cfg: Mapping[str, Any]) -> str:
    parts = []
    for o in _get(cfg, "eos.optimizers") or []:
        lrs = "/".join(describe_setting(lr) for lr in o.get("lrs", []))
        length = (
            f"{describe_setting(o['epochs'])} ep"
            if "epochs" in o
            else f"{describe_setting(o.get('steps'))} steps"
        )
        seeds = f", {len(o['seeds'])} seed(s)" if "seeds" in o else ""
        parts.append(f"{o['name']} {lrs} ({length}{seeds})")
    return "; ".join(parts)


def _seeds(cfg: Mapping[str, Any], key: str) -> str:
    seeds = _get(cfg, key)
    return "not set" if seeds is None else str(len(seeds))


def _fhn_train(cfg: Mapping[str, Any]) -> str:
    t = _get(cfg, "fhn.train") or {}
    stop = (
        f", stop after {describe_setting(t['patience'])} epochs without improvement"
        if t.get("patience")
        else ", every epoch"
    )
    tuning = (t.get("tuning") or {}).get("enabled")
    lr = "tuned on validation data" if tuning else f"lr {describe_setting(t.get('lr'))}"
    return f"up to {describe_setting(t.get('epochs'))} epochs{stop}; {lr}; hidden {describe_setting(t.get('hidden'))}"


# (label, function of a merged config) in the order the table shows them
SCOPE_ROWS: tuple[tuple[str, Any], ...] = (
    ("A.1 systems", lambda c: ", ".join(_get(c, "fhn.systems") or [])),
    ("A.1 conditions", _conditions),
    ("A.1 sequences (train/val/test)", lambda c: "/".join(
        describe_setting(_get(c, f"fhn.dataset.{k}")) for k in ("n_train", "n_val", "n_test"))),
    ("A.1 models", lambda c: ", ".join(_get(c, "fhn.models") or [])),
    ("A.1 seeds", lambda c: _seeds(c, "fhn.seeds")),
    ("A.1 training", _fhn_train),
    ("A.1 rollouts (number x length)", lambda c: f"{describe_setting(_get(c, 'fhn.dataset.rollout_n'))} x "
        f"{describe_setting(_get(c, 'fhn.dataset.rollout_length'))}"),
    ("A.2 dataset", lambda c: ", ".join(_get(c, "eos.datasets") or [])),
    ("A.2 models", lambda c: ", ".join(_get(c, "eos.models") or [])),
    ("A.2 optimizers (lr, length)", _optimizers),
    ("A.2 seeds", lambda c: _seeds(c, "eos.seeds")),
    ("A.2 sharpness", lambda c: f"{_get(c, 'eos.eig_method') or 'lanczos'} on "
        f"{describe_setting(_get(c, 'eos.eig_subset'))} samples"),
)  # fmt: skip

# The original code's A.1 had no `fhn.dataset.n_val` etc.: the original config inherits them from
# config.yaml; shown as they are, the table says so in its caption.


def scope_rows(
    this: Mapping[str, Any], paper: Mapping[str, Any], original: Mapping[str, Any]
) -> list[tuple[str, str, str, str]]:
    return [(label, fn(this), fn(paper), fn(original)) for label, fn in SCOPE_ROWS]


def read_benchmarks(
    root: str | Path, *, exclude: Sequence[str] = ("paper",)
) -> list[dict[str, Any]]:
    """Every benchmark file under ``root`` (one job each, the first data row), except those under
    the sub-folders ``exclude`` (the paper's own jobs, which run after this table)."""
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in exclude:
            continue
        with path.open(newline="") as fh:
            records = list(csv.DictReader(fh, delimiter="\t"))
        if not records:
            continue
        rec = records[0]

        def num(key, rec=rec):
            try:
                v = float(rec.get(key, "nan"))
            except ValueError:
                return math.nan
            return v if math.isfinite(v) else math.nan

        rows.append({"job": str(rel.with_suffix("")), "stage": rel.parts[0],
                     "s": num("s"), "max_rss_mb": num("max_rss"), "cpu_s": num("cpu_time")})  # fmt: skip
    return rows


def run_cost(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over the jobs: summed wall seconds (the run's serial time; on k cores the elapsed
    time is at least this over k), summed CPU seconds, the largest peak memory, per stage."""

    def total(key, subset):
        vals = [r[key] for r in subset if math.isfinite(r[key])]
        return sum(vals) if vals else math.nan

    stages: dict[str, list] = {}
    for r in rows:
        stages.setdefault(r["stage"], []).append(r)
    return {
        "n_jobs": len(rows),
        "wall_s": total("s", rows),
        "cpu_s": total("cpu_s", rows),
        "max_rss_mb": max((r["max_rss_mb"] for r in rows if math.isfinite(r["max_rss_mb"])), default=math.nan),
        "stages": {name: {"n_jobs": len(rs), "wall_s": total("s", rs), "cpu_s": total("cpu_s", rs),
                          "max_rss_mb": max((r["max_rss_mb"] for r in rs if math.isfinite(r["max_rss_mb"])),
                                            default=math.nan)}
                   for name, rs in sorted(stages.items())},
    }  # fmt: skip


def minutes_text(seconds: float) -> str:
    return format_value(seconds / 60.0, 3) if math.isfinite(seconds) else "n/a"


def hardware_text(device: Mapping[str, Any] | None) -> str:
    if not device:
        return "not recorded"
    return (
        f"{device.get('cpu_count', '?')} CPU cores, {device.get('machine', '?')}, "
        f"{device.get('platform', '?')}, Python {device.get('python', '?')}"
        + (f", GPU {device['gpu']}" if device.get("gpu") else "")
    )


def scope_table(rows, *, this_run: str, caption: str, label: str = "tab:scope") -> str:
    lines = [
        "\\begin{table}[htbp]",
        "\\centering\\scriptsize",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        "\\begin{tabular}{@{}"
        + "".join(
            f">{{\\raggedright\\arraybackslash}}p{{\\{w}}}"
            for w in ("ColS", "ColM", "ColM", "ColM")
        )
        + "@{}}",
        "\\toprule",
        f"Setting & This run (\\texttt{{{tex_escape(this_run)}}}) & Paper config (\\texttt{{paper}}) "
        "& Original code (\\texttt{original}) \\\\",
        "\\midrule",
    ]
    for label_, a, b, c in rows:
        lines.append(" & ".join(tex_escape(x) for x in (label_, a, b, c)) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def cost_table(cost: Mapping[str, Any], *, caption: str, label: str = "tab:cost") -> str:
    lines = [
        "\\begin{table}[htbp]",
        "\\centering\\small",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        "\\begin{tabular}{@{}lrrrr@{}}",
        "\\toprule",
        "Stage & Jobs & Wall time (min) & CPU time (min) & Peak memory (MB) \\\\",
        "\\midrule",
    ]
    for name, s in cost["stages"].items():
        rss = format_value(s["max_rss_mb"], 3) if math.isfinite(s["max_rss_mb"]) else "n/a"
        lines.append(f"{tex_escape(name)} & {s['n_jobs']} & {minutes_text(s['wall_s'])} & "
                     f"{minutes_text(s['cpu_s'])} & {rss} \\\\")  # fmt: skip
    lines.append("\\midrule")
    rss = format_value(cost["max_rss_mb"], 3) if math.isfinite(cost["max_rss_mb"]) else "n/a"
    lines.append(f"all & {cost['n_jobs']} & {minutes_text(cost['wall_s'])} & {minutes_text(cost['cpu_s'])} & {rss} \\\\")  # fmt: skip
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def scope_macros(
    this: Mapping[str, Any], cost: Mapping[str, Any], device: Mapping[str, Any] | None
) -> MacroSet:
    """Numbers of the abstract and the computational-requirements paragraph (``\\Scope...``)."""
    ms = MacroSet(prefix="Scope")
    ms.add("Run", tex_escape(this.get("run", "")), "run name")
    ms.add("FhnSystems", tex_escape(", ".join(_get(this, "fhn.systems") or [])), "A.1 systems")
    ms.add(
        "FhnNTrain", describe_setting(_get(this, "fhn.dataset.n_train")), "A.1 training sequences"
    )
    ms.add("FhnNSeeds", _seeds(this, "fhn.seeds"), "A.1 seeds")
    ms.add("FhnConditions", tex_escape(_conditions(this)), "A.1 conditions")
    ms.add("FhnEpochs", describe_setting(_get(this, "fhn.train.epochs")), "A.1 epoch bound")
    ms.add("EosDatasets", tex_escape(", ".join(_get(this, "eos.datasets") or [])), "A.2 data")
    ms.add("EosNSeeds", _seeds(this, "eos.seeds"), "A.2 seeds (default)")
    ms.add("NJobs", str(cost["n_jobs"]), "jobs with a benchmark file")
    ms.add("WallMin", minutes_text(cost["wall_s"]), "summed wall time of the jobs, minutes")
    ms.add("CpuMin", minutes_text(cost["cpu_s"]), "summed CPU time of the jobs, minutes")
    ms.add("PeakMb", format_value(cost["max_rss_mb"], 3) if math.isfinite(cost["max_rss_mb"]) else None,
           "largest peak resident memory of a job, MB")  # fmt: skip
    ms.add("Cores", str((device or {}).get("cpu_count", "n/a")), "CPU cores of the machine")
    ms.add("Hardware", tex_escape(hardware_text(device)), "machine of the run")
    return ms


def provenance_entries(
    makers: Mapping[str, Sequence[str]], root: str | Path | None = None
) -> list[dict[str, str]]:
    """One entry per sidecar JSON (path -> (rule, script)): its short commit and params hash."""
    import json

    from otgap.paper.provenance import sidecar_commit

    out = []
    for path, (rule, script) in sorted(makers.items()):
        p = Path(path)
        if not p.is_file():
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            data = {}
        record = data.get("provenance", data) if isinstance(data, dict) else {}
        phash = record.get("params_hash") if isinstance(record, dict) else None
        shown = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else str(p)
        out.append({"artifact": shown, "rule": rule, "script": Path(script).name,
                    "commit": sidecar_commit(p), "params_hash": (phash or "none")[:12]})  # fmt: skip
    return out


def provenance_table(entries: Sequence[Mapping[str, str]], *, label: str = "tab:provenance") -> str:
    """The appendix table every caption refers to: which rule, script and commit made each result
    file the paper reads (by the sidecar JSON beside it), with the hash of its parameters."""
    caption = (
        "Provenance of the results this report reads: for each result's sidecar file, the "
        "rule and script that wrote it, the git commit of the code (\\texttt{+dirty}: with "
        "uncommitted changes) and the first 12 hex digits of the SHA-256 of its parameters."
    )
    header = "Result (sidecar) & Rule & Script & Commit & Parameters \\\\"
    colspec = "@{}>{\\raggedright\\arraybackslash}p{\\ColXL}llll@{}"
    lines = longtable_head(colspec, caption, label, header)
    for e in entries:
        cells = [f"\\texttt{{{tex_escape(e[k])}}}" for k in ("artifact", "rule", "script", "commit", "params_hash")]  # fmt: skip
        lines.append(" & ".join(cells) + " \\\\")
    if not entries:
        lines.append("\\multicolumn{5}{@{}l}{no sidecar of this run was found} \\\\")
    lines += ["\\end{longtable}", "}", ""]
    return "\n".join(lines)
