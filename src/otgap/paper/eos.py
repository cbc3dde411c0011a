"""Generated parts of the A.2 section (Edge of Stability): macros and the results table.

Reads the aggregate stage's ``summary.csv`` (one row per run: dataset, model, loss, optimizer,
lr, seed, threshold, final_test_acc, max_ratio, late_ratio_median, frac_above, n_measurements,
diverged, ...) by column name; missing columns give ``n/a``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from otgap.paper.macros import MacroSet
from otgap.paper.numbers import (
    as_text,
    best_index,
    format_percent,
    format_setting,
    mean_std_cell,
)
from otgap.paper.tables import sectioned_table, table_float
from otgap.tables.latex import tex_escape

CONFIG_KEYS = ("dataset", "model", "loss", "optimizer", "lr")
# column -> (title, higher is better or None when "best" means nothing)
COLUMNS = {
    "final_test_acc": ("test accuracy", True),
    "final_train_loss": ("final train loss", False),
    "late_ratio_median": ("late $\\lambda_1$/threshold", None),
    "frac_above": ("share above threshold", None),
    "bs_late_ratio_median": ("late batch sharpness/threshold", None),
}
OPT_MACRO = {
    "gd": "Gd",
    "sgd": "Sgd",
    "momentum": "Momentum",
    "adam": "Adam",
    "adamw": "Adamw",
    "gd_momentum": "GdMomentum",
    "adam_fb": "AdamFb",
}
# optimizers whose stability the batch sharpness decides (Andreyev & Beneventano 2024)
BATCH_SHARPNESS_OPTS = ("sgd", "momentum")


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float)


def _diverged(frame: pd.DataFrame) -> np.ndarray:
    if "diverged" not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame["diverged"].astype(str).str.lower().isin(["true", "1"]).to_numpy()


def share_above(
    summary: pd.DataFrame | None, optimizer: str, prefix: str = ""
) -> tuple[float, float, float] | None:
    """Share of all (usable) sharpness measurements of ``optimizer``'s runs above the threshold
    (2/lr, or the optimizer's own): ``(share, lo, hi)``, pooled counts with a Wilson interval.
    ``prefix="bs_"`` gives the same for the batch sharpness. Definitions: otgap.analysis.eos."""
    from otgap.analysis.eos import wilson_interval

    k_col, n_col = f"{prefix}n_above", f"{prefix}n_measurements"
    if summary is None or not {"optimizer", n_col} <= set(summary):
        return None
    sub = summary[(summary["optimizer"] == optimizer) & ~_diverged(summary)]
    n = _num(sub, n_col)
    if k_col in sub:
        k = _num(sub, k_col)
    else:  # an older summary without counts: recover them from the per-run shares
        k = np.round(_num(sub, f"{prefix}frac_above") * n)
    ok = np.isfinite(k) & np.isfinite(n)
    total = int(n[ok].sum())
    if total == 0:
        return None
    hits = int(k[ok].sum())
    return (hits / total, *wilson_interval(hits, total))


def _share_text(share: tuple[float, float, float] | None) -> str | None:
    if share is None:
        return None
    return f"{format_percent(share[0])} [{format_percent(share[1])}, {format_percent(share[2])}]"


def _shares_by_lr_text(
    summary: pd.DataFrame | None, optimizer: str, prefix: str = ""
) -> str | None:
    """The share above threshold per learning rate, never pooled across learning rates:
    '85.9\\% [..] (eta=0.2); 24.4\\% [..] (eta=0.1)' (largest lr first)."""
    if summary is None or not {"optimizer", "lr"} <= set(summary):
        return None
    parts = []
    sub = summary[summary["optimizer"] == optimizer]
    for lr in sorted(set(_num(sub, "lr")[np.isfinite(_num(sub, "lr"))]), reverse=True):
        share = share_above(sub[_num(sub, "lr") == lr], optimizer, prefix)
        if share is not None:
            text = _share_text(share).replace(" [", "\\% [", 1)
            parts.append(f"{text} ($\\eta={format_setting(lr)}$)")
    return "; ".join(parts) or None


def late_ratios(summary: pd.DataFrame | None, optimizer: str, prefix: str = "") -> list[dict]:
    """Per learning rate of ``optimizer``: the late-phase ratio (mean over seeds that did not
    diverge of each seed's late median) with its t-interval (NaN from fewer than 3 seeds)."""
    from otgap.analysis.eos import seed_interval

    col = f"{prefix}late_ratio_median"
    if summary is None or not {"optimizer", "lr", col} <= set(summary):
        return []
    sub = summary[(summary["optimizer"] == optimizer) & ~_diverged(summary)]
    out = []
    for lr, g in sub.groupby("lr", sort=True):
        mean, lo, hi, n = seed_interval(_num(g, col))
        if n:
            out.append({"lr": float(lr), "mean": mean, "lo": lo, "hi": hi, "n": n})
    return out


def verdict(entries: list[dict]) -> str | None:
    """The A.2 verdict rule on late-phase ratios: 'at the edge' when every learning rate's 95%
    interval contains 1 or lies above it, 'below the edge' when one lies below 1, 'undecided
    (n < 3)' when some learning rate has fewer than 3 seeds (no interval)."""
    if not entries:
        return None
    if any(not np.isfinite(e["lo"]) for e in entries):
        return "undecided ($n<3$)"
    if any(e["hi"] < 1 for e in entries):
        return "below the edge"
    return "at the edge"


def _late_text(entries: list[dict]) -> str | None:
    if not entries:
        return None
    parts = []
    for e in entries:
        ci = f" [{as_text(e['lo'])}, {as_text(e['hi'])}]" if np.isfinite(e["lo"]) else ""
        parts.append(f"{as_text(e['mean'])}{ci} ($\\eta={format_setting(e['lr'])}$, $n={e['n']}$)")
    return "; ".join(parts)


def eos_macros(summary: pd.DataFrame | None) -> MacroSet:
    """Macros the A.2 prose cites (prefix ``Eos``)."""
    ms = MacroSet(prefix="Eos")
    have = summary is not None and len(summary) > 0
    ms.add("NRuns", str(len(summary)) if have else None, "training runs")
    ms.add("NDiverged", str(int(_diverged(summary).sum())) if have else None, "runs that diverged")
    for opt, part in OPT_MACRO.items():
        present = have and "optimizer" in summary and (summary["optimizer"] == opt).any()
        sub = summary[summary["optimizer"] == opt] if present else None
        share = share_above(summary, opt) if present else None
        ms.add(
            f"{part}ShareAbove",
            format_percent(share[0]) if share is not None else None,
            f"% of {opt} sharpness measurements above the threshold (preconditioned: no step 0)",
        )
        ms.add(
            f"{part}ShareAboveCi",
            _shares_by_lr_text(summary, opt) if present else None,
            f"{opt}: % above threshold [95% Wilson interval] per lr, pooled over seeds only",
        )
        late_entries = late_ratios(summary, opt) if present else []
        ms.add(
            f"{part}LateRatioCi",
            _late_text(late_entries),
            f"{opt}: late-phase lambda_1/threshold per lr, mean over seeds [95% t-interval]",
        )
        ms.add(
            f"{part}Verdict",
            verdict(late_entries),
            f"{opt}: verdict on lambda_1 (interval contains 1 or above: at the edge)",
        )
        if opt in BATCH_SHARPNESS_OPTS:
            bs_entries = late_ratios(summary, opt, "bs_") if present else []
            ms.add(
                f"{part}BsLateRatioCi",
                _late_text(bs_entries),
                f"{opt}: late-phase batch sharpness/threshold per lr [95% t-interval]",
            )
            ms.add(
                f"{part}BsShareAboveCi",
                _shares_by_lr_text(summary, opt, "bs_") if present else None,
                f"{opt}: % of batch-sharpness measurements above threshold per lr [Wilson]",
            )
            ms.add(
                f"{part}BsVerdict",
                verdict(bs_entries),
                f"{opt}: verdict on the batch sharpness, its deciding quantity",
            )
        late = _num(sub, "late_ratio_median") if sub is not None else np.array([])
        late = late[np.isfinite(late)]
        ms.add(
            f"{part}LateRatio",
            as_text(float(np.median(late))) if late.size else None,
            f"{opt}: median over runs of the late median sharpness/threshold",
        )
        mx = _num(sub, "max_ratio") if sub is not None else np.array([])
        mx = mx[np.isfinite(mx)]
        ms.add(
            f"{part}MaxRatio",
            as_text(float(mx.max())) if mx.size else None,
            f"{opt}: largest sharpness/threshold of any run",
        )
        acc = _num(sub, "final_test_acc") if sub is not None else np.array([])
        acc = acc[np.isfinite(acc)]
        ms.add(
            f"{part}TestAcc",
            format_percent(float(acc.mean())) if acc.size else None,
            f"{opt}: mean final test accuracy over runs, %",
        )
        thr = (
            sorted(set(_num(sub, "threshold")[np.isfinite(_num(sub, "threshold"))]))
            if (sub is not None)
            else []
        )
        ms.add(
            f"{part}Thresholds",
            ", ".join(as_text(t) for t in thr) if thr else None,
            f"{opt}: stability thresholds of its learning rates",
        )
    return ms


def _group(summary: pd.DataFrame) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    keys = [k for k in CONFIG_KEYS if k in summary]
    out = []
    for values, sub in summary.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        out.append((dict(zip(keys, values, strict=True)), sub))
    return out


def eos_table(summary: pd.DataFrame | None, *, provenance: str, label: str = "tab:eos") -> str:
    """Table float: one row per (dataset, model, loss, optimizer, lr), mean +- std over seeds."""
    if summary is None or summary.empty or "optimizer" not in summary:
        body = "\\emph{A.2 results not available.}"
        return f"\\begin{{table}}[htbp]\n\\centering\n{body}\n\\caption{{{provenance}}}\n\\label{{{label}}}\n\\end{{table}}\n"
    groups = _group(summary)
    columns = [c for c in COLUMNS if c in summary]
    stats = []
    for cfg, sub in groups:
        div = _diverged(sub)
        ok = sub[~div]
        row = {"cfg": cfg, "n": len(sub), "div": int(div.sum())}
        for c in columns:
            v = _num(ok, c)
            if c in ("final_test_acc", "frac_above"):
                v = 100 * v
            v = v[np.isfinite(v)]
            row[c] = (
                float(v.mean()) if v.size else None,
                float(v.std(ddof=1)) if v.size > 1 else None,
            )
        stats.append(row)
    best = {}
    for c in columns:
        higher = COLUMNS[c][1]
        if higher is None:
            continue
        means = [r[c][0] if r["div"] == 0 else None for r in stats]
        best[c] = best_index(means, lower_is_better=not higher)
    header = [
        "Optimizer",
        "lr",
        *[
            COLUMNS[c][0] + (" (\\%)" if c in ("final_test_acc", "frac_above") else "")
            for c in columns
        ],
    ]
    sections: dict[str, list[list[str]]] = {}
    for i, r in enumerate(stats):
        cfg = r["cfg"]
        title = ", ".join(str(cfg.get(k, "")) for k in ("dataset", "model", "loss") if k in cfg)
        # all seeds diverged: every cell says so; some: the first cell says how many
        cells = [
            mean_std_cell(
                r[c][0],
                r[c][1],
                bold=best.get(c) == i,
                diverged=r["div"] if (j == 0 or r["div"] >= r["n"]) else 0,
                n=r["n"],
            )
            for j, c in enumerate(columns)
        ]
        sections.setdefault(title, []).append(
            [tex_escape(cfg.get("optimizer", "")), format_setting(cfg.get("lr")), *cells]
        )
    caption = (
        "A.2: mean $\\pm$ standard deviation over seeds (the standard deviation to two "
        "significant figures, the mean to the same decimal place); $\\lambda_1$ is the "
        "sharpness, the threshold $2/\\eta$ for (S)GD and the preconditioned threshold for "
        "adaptive methods. Late: each seed's median ratio over its last third of measurements "
        "(step 0 of preconditioned runs excluded); share above: of those measurements; batch "
        "sharpness: mean over mini-batches of $g_B^\\top H_B g_B/g_B^\\top g_B$ (SGD, "
        "heavy ball). Bold: best mean among configurations without a diverged seed "
        "(only where better is defined). A diverged run is named in its cell and left out of "
        "the mean. " + provenance
    )
    return table_float(
        sectioned_table(header, [(t or None, rows) for t, rows in sections.items()]),
        caption,
        label,
    )
