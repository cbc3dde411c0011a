"""A.1 aggregation, LaTeX table and figure code on synthetic run results."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from otgap.analysis.fhn import KEY_COLUMNS, metrics_frame, statistics
from otgap.metrics.forecast import METRIC_NAMES
from otgap.tables.fhn import summary_table
from otgap.tables.latex import booktabs_table, mean_std, tex_escape

MODELS = ["neural_ode", "tlstm", "last_observation"]
CONDITIONS = ["regular", "jitter"]
SEEDS = [0, 1, 2]


def _records():
    rng = np.random.default_rng(0)
    base = {"neural_ode": 0.05, "tlstm": 0.1, "last_observation": 0.3}
    for c in CONDITIONS:
        for m in MODELS:
            for s in SEEDS:
                metrics = {k: base[m] * (1 + 0.05 * rng.normal()) for k in METRIC_NAMES}
                metrics["vpt"] = None  # not applicable: NaN in the frame
                yield {"system": "fhn", "condition": c, "model": m, "seed": s}, metrics


@pytest.fixture(scope="module")
def frame():
    return metrics_frame(_records())


@pytest.fixture(scope="module")
def stats(frame):
    return statistics(frame, reference="neural_ode")


def test_metrics_frame(frame):
    assert list(frame.columns) == [*KEY_COLUMNS, *METRIC_NAMES]
    assert len(frame) == len(CONDITIONS) * len(MODELS) * len(SEEDS)
    assert frame["vpt"].isna().all()
    with pytest.raises(KeyError, match="seed"):
        metrics_frame([({"system": "fhn", "condition": "c", "model": "m"}, {})])


def test_statistics_rows_and_reference(stats, frame):
    assert len(stats) == len(CONDITIONS) * len(MODELS) * len(METRIC_NAMES)
    ref_rows = stats[stats["model"] == "neural_ode"]
    assert ref_rows["p_ttest"].isna().all() and not ref_rows["significant"].any()
    row = stats[
        (stats.model == "tlstm") & (stats.condition == "jitter") & (stats.metric == "rmse_interp")
    ].iloc[0]
    vals = frame[(frame.model == "tlstm") & (frame.condition == "jitter")]["rmse_interp"]
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["significant"]  # 0.1 vs 0.05 with 5% noise over 3 seeds
    assert "no Wilcoxon test" in row["note"]
    # the last-observation baseline is a reference: summarised, never tested
    ref = stats[
        (stats.model == "last_observation")
        & (stats.condition == "jitter")
        & (stats.metric == "rmse_interp")
    ].iloc[0]
    assert np.isnan(ref["p_ttest"]) and not ref["significant"]
    assert ref["mean"] > 0
    with pytest.raises(ValueError, match="reference model 'nope'"):
        statistics(frame, reference="nope")


def test_latex_helpers():
    assert tex_escape("a_b & 50%") == r"a\_b \& 50\%"
    assert mean_std(0.12345, 0.01, 3) == r"$0.123 \pm 0.010$"
    assert mean_std(float("nan"), 0.1) == "--"
    assert mean_std(1.0, float("nan"), 1) == "$1.0$"
    assert mean_std(1.0, 0.5, 1, bold=True, mark="^{*}") == r"$\mathbf{1.0 \pm 0.5}^{*}$"
    tex = booktabs_table(["A", "B"], [("sec", [["x", "1"]]), (None, [["y", "2"]])])
    assert tex.count(r"\midrule") == 3 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{2}{l}{\textit{sec}}" in tex
    with pytest.raises(ValueError, match="cells"):
        booktabs_table(["A", "B"], [(None, [["only one"]])])


def test_summary_table_marks(stats):
    tex = summary_table(stats, models=MODELS, conditions=CONDITIONS, metrics=["rmse_interp"])
    lines = [ln for ln in tex.splitlines() if ln.startswith(("neural", "tlstm", "last"))]
    assert len(lines) == len(MODELS)
    node = next(ln for ln in lines if ln.startswith("neural"))
    last = next(ln for ln in lines if ln.startswith("last"))
    tlstm = next(ln for ln in lines if ln.startswith("tlstm"))
    assert r"\mathbf" in node and r"\dagger" not in node  # best, and the reference itself
    assert r"\dagger" in tlstm
    # the last-observation baseline: labelled a reference, never tested, never bold
    assert "(reference)" in last and r"\dagger" not in last and r"\mathbf" not in last
    assert tex.count("&") == 2 * (1 + len(MODELS))  # header + rows, 3 columns each


def test_figure2_builds_and_saves(stats, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from otgap.plots.fhn import FigureSpec, figure2
    from otgap.plots.style import apply_style, save_figure

    apply_style()
    L, rc = 60, 5
    rng = np.random.default_rng(0)
    rt = np.cumsum(np.full((2, L), 0.5), axis=1)
    ry = np.stack([np.sin(rt), np.cos(rt)], axis=-1)
    curves = {}
    for c in CONDITIONS:
        for m in MODELS:
            for s in SEEDS:
                curves[(c, m, s)] = {
                    "rollout_pred": ry + 0.1 * rng.normal(size=ry.shape),
                    "error_growth_mean": np.abs(rng.normal(size=L - rc)) + 0.01,
                    "rollout_time": rt[0, rc:] - rt[0, rc - 1],
                    "rmse_interp_per_sequence": np.abs(rng.normal(size=8)) + 0.01,
                    "orbit_distance_per_trajectory": np.abs(rng.normal(size=2)) + 0.01,
                    "period_error_per_trajectory": np.array([np.nan, 0.1]),
                }
    spec = FigureSpec(
        system="fhn",
        focus_condition="jitter",
        regular_condition="regular",
        models=MODELS,
        conditions=CONDITIONS,
        seeds=SEEDS,
        smoothing=5,
    )
    fig = figure2(stats, curves, {"rollout_t": rt, "rollout_y": ry, "rollout_context": rc}, spec)
    assert len(fig.axes) == 8
    pdf, png = tmp_path / "f.pdf", tmp_path / "f.png"
    save_figure(fig, pdf, png)
    plt.close(fig)
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:4] == b"\x89PNG"
    # without a regular condition panel D says so instead of failing
    spec2 = FigureSpec(
        system="fhn",
        focus_condition="jitter",
        regular_condition=None,
        models=MODELS,
        conditions=CONDITIONS,
        seeds=SEEDS,
        smoothing=5,
    )
    plt.close(
        figure2(stats, curves, {"rollout_t": rt, "rollout_y": ry, "rollout_context": rc}, spec2)
    )


def test_nan_metrics_survive_aggregation():
    recs = [
        (
            {"system": "s", "condition": "c", "model": m, "seed": k},
            {"rmse_interp": (math.nan if m == "x" else 1.0 + k)},
        )
        for m in ("ref", "x")
        for k in range(3)
    ]
    st = statistics(metrics_frame(recs), reference="ref", metrics=["rmse_interp"])
    row = st[st.model == "x"].iloc[0]
    assert math.isnan(row["mean"]) and row["n"] == 0 and not row["significant"]
    assert isinstance(pd.DataFrame(st), pd.DataFrame)


def test_table_marks_lost_seeds_and_never_bolds_them():
    """A model whose metric is non-finite on some seeds is marked and cannot be 'best'."""
    import pandas as pd

    from otgap.tables.fhn import summary_table

    rows = [
        dict(model="unstable", mean=0.1, n_nonfinite=2),
        dict(model="neural_ode", mean=0.2, n_nonfinite=0),
    ]
    stats = pd.DataFrame(
        [
            dict(
                system="fhn", condition="c", metric="rmse_interp", std=0.01, significant=False, **r
            )
            for r in rows
        ]
    )
    tex = summary_table(stats, metrics=["rmse_interp"])
    unstable = next(line for line in tex.splitlines() if line.startswith("unstable"))
    reference = next(line for line in tex.splitlines() if line.startswith("neural"))
    assert "2\\,\\mathrm{failed}" in unstable and "mathbf" not in unstable
    assert "mathbf" in reference


def test_statistics_on_log_scale(stats, frame):
    """Errors: paired t-test of log values (scipy on the logs as reference), geometric mean and
    its back-transformed interval; times stay on their own scale."""
    from scipy import stats as sps

    sub = frame[(frame["condition"] == "jitter")]
    ref = sub[sub["model"] == "neural_ode"].set_index("seed")["rmse_interp"]
    oth = sub[sub["model"] == "tlstm"].set_index("seed")["rmse_interp"]
    expected = sps.ttest_rel(np.log(oth.to_numpy()), np.log(ref.to_numpy())).pvalue
    row = stats[
        (stats["condition"] == "jitter")
        & (stats["model"] == "tlstm")
        & (stats["metric"] == "rmse_interp")
    ].iloc[0]
    assert row["scale"] == "log"
    assert row["p_ttest"] == pytest.approx(expected)
    assert row["ratio"] == pytest.approx(np.exp(np.mean(np.log(oth.to_numpy() / ref.to_numpy()))))
    assert row["gmean"] == pytest.approx(np.exp(np.mean(np.log(oth.to_numpy()))))
    assert 0 < row["gci_low"] < row["gmean"] < row["gci_high"]
    band = stats[(stats["metric"] == "time_in_band") & (stats["model"] == "tlstm")].iloc[0]
    assert band["scale"] == "linear"
