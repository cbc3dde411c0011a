"""Figures across the optimizers of one (dataset, model, loss) group (rule eos_figures_compare):
sharpness/threshold over training per optimizer and lr, and Hessian spectra at start, middle and
end of each configuration's first seed."""

import matplotlib.pyplot as plt
import pandas as pd

from otgap.io import read_npz
from otgap.jobs import job
from otgap.plots.eos import comparison_figure, spectrum_figure
from otgap.plots.style import apply_style, save_figure

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    apply_style()
    group = dict(smk.params.group)

    def select(frame: pd.DataFrame) -> pd.DataFrame:
        mask = pd.Series(True, index=frame.index)
        for key, value in group.items():
            mask &= frame[key].astype(str) == str(value)
        return frame[mask]

    traj = select(pd.read_csv(smk.input.trajectories))
    summary = select(pd.read_csv(smk.input.summary))
    if summary.empty:
        raise ValueError(f"no runs of {group} in {smk.input.summary}")
    fig = comparison_figure(traj, summary)
    save_figure(fig, smk.output.comparison_pdf, smk.output.comparison_png)
    plt.close(fig)
    spectra = [
        (f"{c['optimizer']} lr={float(c['lr']):g} (seed {c['seed']})", read_npz(path))
        for c, path in zip(smk.params.configs, smk.input.spectra, strict=True)
    ]
    fig = spectrum_figure(spectra)
    save_figure(fig, smk.output.spectrum_pdf, smk.output.spectrum_png)
    plt.close(fig)
    log(f"{len(summary)} runs, {len(spectra)} spectra")
