"""Figures of one Edge-of-Stability configuration (rule eos_figures): figure 3 for the first seed
and the multi-seed figure (mean and 95% CI, surface and contours of the median-final-loss seed)."""

import matplotlib.pyplot as plt
import pandas as pd

from otgap.io import read_npz
from otgap.jobs import job
from otgap.plots.eos import figure3, median_final_loss_seed, multiseed_figure
from otgap.plots.style import apply_style, save_figure

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    apply_style()
    cfg = dict(smk.params.config)
    seeds = [int(s) for s in smk.params.seeds]
    lands = dict(zip(seeds, smk.input.landscapes, strict=True))

    def select(frame: pd.DataFrame) -> pd.DataFrame:
        mask = pd.Series(True, index=frame.index)
        for key in ("dataset", "model", "optimizer", "loss"):
            mask &= frame[key].astype(str) == str(cfg[key])
        return frame[mask & (frame["lr"] == float(cfg["lr"])) & frame["seed"].isin(seeds)]

    traj = select(pd.read_csv(smk.input.trajectories))
    summary = select(pd.read_csv(smk.input.summary))
    if summary.empty:
        raise ValueError(f"no runs of {cfg} in {smk.input.summary}")
    preconditioned = bool(summary["preconditioned"].iloc[0])
    first = seeds[0]
    fig = figure3(traj[traj["seed"] == first], read_npz(lands[first]), preconditioned)
    save_figure(fig, smk.output.figure3_pdf, smk.output.figure3_png)
    plt.close(fig)
    median = median_final_loss_seed(summary)
    log(f"median-final-loss seed: {median}")
    fig = multiseed_figure(traj, summary, read_npz(lands[median]), median, preconditioned)
    save_figure(fig, smk.output.multiseed_pdf, smk.output.multiseed_png)
    plt.close(fig)
