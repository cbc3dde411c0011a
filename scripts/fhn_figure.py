"""Figure 2 of Appendix A.1, one per system (rule fhn_figure)."""

import matplotlib.pyplot as plt
import pandas as pd

from otgap.io import read_npz
from otgap.jobs import job
from otgap.plots.fhn import FigureSpec, figure2
from otgap.plots.style import apply_style, save_figure

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    apply_style()
    stats = pd.read_csv(smk.input.stats)
    runs = list(smk.params.runs)
    curves = {
        (r["system"], r["condition"], r["model"], int(r["seed"])): read_npz(p)
        for r, p in zip(runs, smk.input.curves, strict=True)
    }
    for k, fig_params in enumerate(smk.params.figures):
        spec = FigureSpec(**fig_params)
        system_curves = {key[1:]: c for key, c in curves.items() if key[0] == spec.system}
        truth = read_npz(smk.input.truth[k])
        fig = figure2(stats[stats["system"] == spec.system], system_curves, truth, spec)
        save_figure(fig, smk.output.pdf[k], smk.output.png[k])
        plt.close(fig)
        log(f"{spec.system}: {smk.output.pdf[k]}")
