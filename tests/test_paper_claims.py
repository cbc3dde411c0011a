"""The claims file and the one verdict rule of the report (otgap.paper.claims), on constructed
evidence: every verdict reachable, statistics against independent references."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from otgap.paper import claims as C

REPO = Path(__file__).resolve().parents[1]
ALPHA, TARGET = 0.05, 0.8


def _decide(values, bound=0.0, d=1.0, **kw):
    r = C.one_sided_test(values, bound, effect_size=d, alpha=ALPHA)
    return C.verdict(r, alpha=ALPHA, power_target=TARGET, **kw)


# ---- statistics ------------------------------------------------------------------------------


def test_p_values_match_scipy_one_sided_ttest():
    x = [0.31, 0.12, 0.45, -0.05, 0.22]
    r = C.one_sided_test(x, 0.1, effect_size=1.0, alpha=ALPHA)
    assert r.p_claim == pytest.approx(
        stats.ttest_1samp(x, 0.1, alternative="greater").pvalue, rel=1e-12
    )
    assert r.p_opposite == pytest.approx(
        stats.ttest_1samp(x, 0.1, alternative="less").pvalue, rel=1e-12
    )
    assert r.n == 5 and r.estimate == pytest.approx(np.mean(x))


def test_power_matches_simulation():
    rng = np.random.default_rng(0)
    for n, d in ((3, 1.0), (8, 0.8)):
        draws = rng.normal(d, 1.0, size=(20000, n))
        p = stats.ttest_1samp(draws, 0.0, axis=1, alternative="greater").pvalue
        assert C.t_power(n, d, ALPHA) == pytest.approx(float(np.mean(p < ALPHA)), abs=0.012)
    assert math.isnan(C.t_power(1, 1.0, ALPHA))
    # at d = 0 the power is the level
    assert C.t_power(6, 0.0, ALPHA) == pytest.approx(ALPHA, abs=1e-9)


# ---- every verdict reachable -----------------------------------------------------------------


def test_reproduced():
    assert _decide([0.5, 0.6, 0.55, 0.7]).verdict == C.REPRODUCED


def test_not_reproduced_when_significant_against():
    v = _decide([-0.5, -0.6, -0.55, -0.7])
    assert v.verdict == C.NOT_REPRODUCED and "against" in v.reason


def test_not_reproduced_when_null_at_adequate_power():
    rng = np.random.default_rng(1)
    x = list(rng.normal(0.0, 1.0, 30))
    x = [v - np.mean(x) + 0.01 for v in x]  # mean just above 0, far from significant
    r = C.one_sided_test(x, 0.0, effect_size=1.0, alpha=ALPHA)
    assert r.power > TARGET and r.p_claim > ALPHA and r.p_opposite > ALPHA
    v = C.verdict(r, alpha=ALPHA, power_target=TARGET)
    assert v.verdict == C.NOT_REPRODUCED and "power" in v.reason


def test_inconclusive_with_low_power_or_one_seed():
    v = _decide([0.2, -0.1, 0.4])  # n = 3: power ~0.32 at d = 1
    assert v.verdict == C.INCONCLUSIVE
    assert _decide([0.9]).verdict == C.INCONCLUSIVE


def test_substitute_data_reports_the_lean():
    v = _decide([0.5, 0.6, 0.55, 0.7], substitute="digits instead of pathmnist")
    assert v.verdict == C.SUBSTITUTE and v.lean == "supports" and "digits" in v.reason
    assert _decide([-0.5, -0.6, -0.55], substitute="x").lean == "opposes"


def test_untested_names_the_config_that_runs_it():
    v = C.verdict(None, alpha=ALPHA, power_target=TARGET, runs_elsewhere=["claims"])
    assert v.verdict == C.UNTESTED and "config/claims.yaml" in v.reason
    v = C.verdict(None, alpha=ALPHA, power_target=TARGET)
    assert "no configuration" in v.reason


def test_deterministic_estimate():
    assert (
        C.verdict(C.estimate_test(0.037, 0.005), alpha=ALPHA, power_target=TARGET).verdict
        == C.REPRODUCED
    )
    assert (
        C.verdict(C.estimate_test(3e-5, 0.005), alpha=ALPHA, power_target=TARGET).verdict
        == C.NOT_REPRODUCED
    )


def test_all_verdicts_listed():
    assert set(C.VERDICTS) == {
        C.REPRODUCED,
        C.NOT_REPRODUCED,
        C.INCONCLUSIVE,
        C.SUBSTITUTE,
        C.UNTESTED,
    }


# ---- the committed claims file and its evidence ------------------------------------------------


def test_committed_claims_file_is_valid():
    spec = C.load_claims(REPO / "paper" / "claims.yaml")
    ids = [c["id"] for c in spec["claims"]]
    assert {"A1-chaos", "A1-sparse-lstm", "A2-sgd-edge"} <= set(ids)


def test_claims_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("alpha: 0.05\npower_target: 0.8\nclaims:\n  - {id: x, claim: c, where: w, evidence: fhn_pair, "
                   "test: t, original_data: same, original: {}}\n")  # fmt: skip
    with pytest.raises(C.ClaimsError, match="system"):
        C.load_claims(bad)


def _cfg(conditions, models=("neural_ode", "lstm_dt", "odernn"), run="this"):
    return {"run": run, "fhn": {"systems": ["fhn"], "conditions": conditions, "models": list(models)},
            "eos": {"optimizers": [{"name": "sgd", "lrs": [0.1]}]}}  # fmt: skip


def test_fhn_pair_evidence_pairs_by_seed_in_the_sparsest_condition():
    claim = {"id": "c", "evidence": "fhn_pair", "system": "fhn", "model": "neural_ode",
             "versus": "lstm_dt", "metric": "rmse_interp", "max_obs_fraction": 0.5, "effect_size": 1.0}  # fmt: skip
    cfg = _cfg([{"name": "jitter", "jitter": 0.3, "obs_fraction": 1.0},
                {"name": "s50", "jitter": 0.3, "obs_fraction": 0.5},
                {"name": "s30", "jitter": 0.3, "obs_fraction": 0.3}])  # fmt: skip
    rows = []
    for seed, (node, lstm) in enumerate([(0.05, 0.10), (0.06, 0.09), (0.04, 0.12)]):
        rows += [{"system": "fhn", "condition": "s30", "model": "neural_ode", "seed": seed, "rmse_interp": node},
                 {"system": "fhn", "condition": "s30", "model": "lstm_dt", "seed": seed, "rmse_interp": lstm},
                 # a denser condition with the opposite result must not be used
                 {"system": "fhn", "condition": "s50", "model": "neural_ode", "seed": seed, "rmse_interp": 1.0},
                 {"system": "fhn", "condition": "s50", "model": "lstm_dt", "seed": seed, "rmse_interp": 0.1}]  # fmt: skip
    result, cond = C.fhn_pair_evidence(pd.DataFrame(rows), claim, cfg, alpha=ALPHA)
    assert cond == "s30" and result.n == 3
    expected = np.log([0.10 / 0.05, 0.09 / 0.06, 0.12 / 0.04])
    assert result.estimate == pytest.approx(expected.mean())
    # no sparse condition in this config, one in another: untested, naming it
    dense = _cfg([{"name": "jitter", "jitter": 0.3, "obs_fraction": 1.0}])
    assert C.claim_condition(claim, dense) is None
    assert C.configs_running(claim, {"claims": cfg, "quick": dense}) == ["claims"]


def test_an_undertrained_cell_makes_a_significant_pair_inconclusive():
    spec = C.load_claims(REPO / "paper" / "claims.yaml")
    original = C.project_configs(REPO / "config")["original"]
    claim = next(c for c in spec["claims"] if c["id"] == "A1-sparse-lstm")
    cfg = _cfg([{"name": "s30", "jitter": 0.3, "obs_fraction": 0.3}])

    def metrics(node_best_epochs):
        rows = []
        for seed, (node, lstm) in enumerate([(0.05, 0.30), (0.06, 0.33), (0.04, 0.31)]):
            for model, err, best in ((claim["model"], node, node_best_epochs[seed]),
                                     (claim["versus"], lstm, 400)):  # fmt: skip
                rows.append({"system": claim["system"], "condition": "s30", "model": model,
                             "seed": seed, claim["metric"]: err, "best_epoch": best,
                             "epoch_bound": 1000, "n_params": 100, "lr": 0.01})  # fmt: skip
        return pd.DataFrame(rows)

    def row(frame):
        rows = C.build_rows({**spec, "claims": [claim]}, cfg=cfg, original_cfg=original,
                            configs={}, fhn_metrics=frame)  # fmt: skip
        return rows[0]

    converged = row(metrics([300, 420, 510]))  # every best epoch well before 900 of 1000
    assert converged.verdict.verdict == C.REPRODUCED
    late = row(metrics([300, 950, 510]))  # 1 of 3 best epochs in the last 10 %: undertrained
    assert late.verdict.verdict == C.INCONCLUSIVE
    assert late.verdict.reason == f"undertrained: {claim['model']}/s30"
    assert "undertrained" in C.verdict_cell(late.verdict)


def test_eos_evidence_never_pools_learning_rates():
    claim = {"id": "e", "evidence": "eos_ratio", "optimizer": "gd", "quantity": "late_ratio_median",
             "margin": 0.9, "effect_size": 1.0}  # fmt: skip
    summary = pd.DataFrame(
        [{"dataset": "digits", "optimizer": "gd", "lr": lr, "seed": s, "late_ratio_median": v}
         for lr, vals in ((0.1, [1.01, 1.02, 0.99]), (0.2, [0.3, 0.35, 0.32])) for s, v in enumerate(vals)]
    )  # fmt: skip
    found = C.eos_ratio_evidence(summary, claim, alpha=ALPHA)
    by_lr = {lr: r for _, lr, r, _ in found}
    assert set(by_lr) == {0.1, 0.2}
    assert by_lr[0.1].estimate == pytest.approx(np.mean([1.01, 1.02, 0.99]))
    assert C.verdict(by_lr[0.2], alpha=ALPHA, power_target=TARGET).verdict == C.NOT_REPRODUCED


def test_build_rows_table_and_substitute(tmp_path):
    spec = C.load_claims(REPO / "paper" / "claims.yaml")
    original = C.project_configs(REPO / "config")["original"]
    cfg = _cfg([{"name": "jitter", "jitter": 0.3, "obs_fraction": 1.0}])
    summary = pd.DataFrame(
        [{"dataset": "digits", "optimizer": "sgd", "lr": 0.1, "seed": s, "late_ratio_median": v,
          "bs_late_ratio_median": v + 0.5} for s, v in enumerate([0.3, 0.32, 0.31])]
    )  # fmt: skip
    lyap = tmp_path / "lyapunov.json"
    lyap.write_text(json.dumps({"lyapunov": 2.9e-5}))
    rows = C.build_rows(spec, cfg=cfg, original_cfg=original, configs={"claims": _cfg(
        [{"name": "s30", "jitter": 0.3, "obs_fraction": 0.3}], run="claims")},
        eos_summary=summary, lyapunov_path=lyap)  # fmt: skip
    by = {r.label: r for r in rows}
    assert by["A1-chaos"].verdict.verdict == C.NOT_REPRODUCED
    assert by["A1-sparse-lstm"].verdict.verdict == C.UNTESTED
    assert "config/claims.yaml" in by["A1-sparse-lstm"].verdict.reason
    sgd = by["A2-sgd-edge"]
    assert sgd.verdict.verdict == C.SUBSTITUTE and sgd.quantity == "bs_late_ratio_median"
    assert "pathmnist" in sgd.original and "0.15" in sgd.original  # from config/original.yaml
    tex = C.claims_table(rows, caption="Claims.")
    assert tex.count("\\textbf{" + C.SUBSTITUTE + "}") >= 1
    assert all(f"\\textbf{{{r.label}}}" in tex for r in rows)


# ---- the scope, cost and provenance tables (otgap.paper.scope) --------------------------------


def test_run_cost_sums_benchmark_files_by_hand(tmp_path):
    from otgap.paper import scope

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"fhn/a.tsv": (12.5, 100.0, 11.0), "fhn/b.tsv": (7.5, 300.0, 6.0),
             "eos/c.tsv": (60.0, 50.0, 55.0), "paper/pdf.tsv": (999.0, 9999.0, 999.0)}  # fmt: skip
    for rel, (s, rss, cpu) in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(
            header + f"{s}\t0:00:{int(s):02d}\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n"
        )
    cost = scope.run_cost(scope.read_benchmarks(tmp_path))
    assert cost["n_jobs"] == 3  # the paper's own job is excluded
    assert cost["wall_s"] == pytest.approx(80.0) and cost["cpu_s"] == pytest.approx(72.0)
    assert cost["max_rss_mb"] == 300.0
    assert cost["stages"]["fhn"]["wall_s"] == pytest.approx(20.0)
    tex = scope.cost_table(cost, caption="c")
    assert "fhn & 2 & 0.333 & 0.283 & 300" in tex  # 20 s = 0.333 min, 17 s CPU = 0.283 min


def test_scope_rows_show_three_configs_side_by_side():
    from otgap.paper import scope

    configs = C.project_configs(REPO / "config")
    quick = configs["quick"]
    rows = {
        label: (a, b, c)
        for label, a, b, c in scope.scope_rows(quick, configs["config"], configs["original"])
    }
    this, paper, original = rows["A.2 dataset"]
    assert (this, paper, original) == (
        ", ".join(quick["eos"]["datasets"]),
        "pathmnist",
        "pathmnist",
    )
    # the original's A.1 training: 1500 epochs at lr 0.0005 (config/original.yaml), not an overlay's
    assert "1500" in rows["A.1 training"][2] and "0.0005" in rows["A.1 training"][2]
    assert rows["A.1 seeds"][2] == "5"


def test_provenance_table_lists_commit_and_params_hash(tmp_path):
    from otgap.paper import scope

    side = tmp_path / "aggregate" / "x.json"
    side.parent.mkdir()
    side.write_text(
        json.dumps(
            {"provenance": {"git_commit": "0123456789abcdef-dirty", "params_hash": "f" * 64}}
        )
    )
    entries = scope.provenance_entries(
        {str(side): ("x_rule", "scripts/x.py"), str(tmp_path / "gone.json"): ("y", "y.py")},
        tmp_path,
    )
    assert entries == [{"artifact": "aggregate/x.json", "rule": "x_rule", "script": "x.py",
                        "commit": "0123456+dirty", "params_hash": "f" * 12}]  # fmt: skip
    assert "0123456+dirty" in scope.provenance_table(entries)


# ---- the quick run's PDF as a reader gets it ---------------------------------------------------
HAVE_PDFTOTEXT = shutil.which("pdftotext") is not None


@pytest.mark.e2e
@pytest.mark.skipif(
    not HAVE_PDFTOTEXT and os.environ.get("OTGAP_REQUIRE_TEX") != "1",
    reason="pdftotext not installed",
)
def test_quick_pdf_is_a_reproduction_report(quick_run):
    pdf = quick_run / "paper" / "main.pdf"
    if not pdf.is_file():
        if os.environ.get("OTGAP_REQUIRE_TEX") == "1":
            pytest.fail(f"{pdf} missing although OTGAP_REQUIRE_TEX=1")
        pytest.skip("the quick run built no PDF (no TeX)")
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    assert "Abstract" in flat and "What was run" in flat and "Paper config" in flat
    assert "Limitations" in flat and "Discussion" in flat and "Computational requirements" in flat
    assert "Extensions beyond the reproduction" in flat and "Provenance" in flat
    # one verdict per listed claim, in the PDF and in the table beside it
    spec = C.load_claims(REPO / "paper" / "claims.yaml")
    verdicts = pd.read_csv(quick_run / "paper" / "claims.csv")
    for claim in spec["claims"]:
        rows = verdicts[verdicts["claim_id"] == claim["id"]]
        assert len(rows) >= 1, f"claim {claim['id']} has no row"
        assert set(rows["verdict"]) <= set(C.VERDICTS)
        for label in rows["label"]:
            assert label in flat, f"claim row {label} not in the PDF"
    n_verdicts = sum(
        flat.count(v) for v in (C.REPRODUCED, C.INCONCLUSIVE, C.SUBSTITUTE, C.UNTESTED)
    )
    assert n_verdicts >= len(verdicts) - (verdicts["verdict"] == C.NOT_REPRODUCED).sum()
    # no placeholders
    for word in ("not run", "unknown", "commit unknown"):
        assert word not in flat.lower(), f"'{word}' in the quick PDF"


def test_bibliography_entries_have_a_year_and_unique_keys():
    import re

    bib = (REPO / "paper" / "references.bib").read_text()
    entries = re.split(r"(?m)^@", bib)[1:]
    keys = [e.split("{", 1)[1].split(",", 1)[0].strip() for e in entries]
    assert len(keys) == len(set(keys)), (
        f"duplicate keys: {sorted(k for k in keys if keys.count(k) > 1)}"
    )
    for key, entry in zip(keys, entries, strict=True):
        assert re.search(r"(?m)^\s*year\s*=\s*\{\d{4}\}", entry), f"{key} has no year"
    # the names as the sources give them (docs/sources.md; the README's "Kavahei" is a misspelling
    # of Omid Kavehei, University of Sydney)
    assert "Kavehei, Omid" in bib and "Roy Choudhury, Hindol" in bib


def test_eos_quantity_falls_back_per_learning_rate():
    claim = {"id": "s", "evidence": "eos_ratio", "optimizer": "sgd", "quantity": "bs_late_ratio_median",
             "fallback_quantity": "late_ratio_median", "margin": 0.9, "effect_size": 1.0}  # fmt: skip
    summary = pd.DataFrame(
        [{"dataset": "digits", "optimizer": "sgd", "lr": 0.1, "seed": s, "late_ratio_median": 0.3,
          "bs_late_ratio_median": float("nan")} for s in range(3)]
        + [{"dataset": "digits", "optimizer": "sgd", "lr": 0.15, "seed": s, "late_ratio_median": 0.3,
            "bs_late_ratio_median": 1.1} for s in range(3)]
    )  # fmt: skip
    found = {lr: (r, q) for _, lr, r, q in C.eos_ratio_evidence(summary, claim, alpha=ALPHA)}
    assert found[0.1][1] == "late_ratio_median" and found[0.1][0].n == 3
    assert found[0.15][1] == "bs_late_ratio_median" and found[0.15][0].estimate == pytest.approx(
        1.1
    )


def test_reference_is_used_only_while_its_digest_matches(tmp_path):
    from otgap.paper import reference as ref

    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / "src/otgap").mkdir(parents=True)
    (repo / "config/config.yaml").write_text("run: paper\n")
    (repo / "config/original_quick.yaml").write_text("run: original_quick\n")
    (repo / "src/otgap/x.py").write_text("A = 1\n")
    run = tmp_path / "results/original_quick"
    for k in ref.KEPT:
        (run / k).parent.mkdir(parents=True, exist_ok=True)
        (run / k).write_text("x\n")
    target = repo / "docs/reference/original_quick"
    cfg = repo / "config/original_quick.yaml"
    assert ref.reference_status(target, cfg, repo) == (False, "no reference result kept")
    ref.keep(run, target, cfg, repo)
    assert ref.reference_status(target, cfg, repo) == (True, "current")
    cfg.write_text("run: original_quick\nfhn: {seeds: [0]}\n")
    assert ref.reference_status(target, cfg, repo)[1] == "it was made with another configuration"
    cfg.write_text("run: original_quick\n")
    (repo / "src/otgap/x.py").write_text("A = 2\n")
    assert "stale" in ref.reference_status(target, cfg, repo)[1]
