"""Decision-boundary animation of a Landau net + Langevin on a 2-D set (rule
systems_landau_boundary)."""

import numpy as np
import torch

from otgap.data.dataset import ClassificationData
from otgap.data.toy2d import make_toy2d
from otgap.io import write_json
from otgap.jobs import job
from otgap.plots.landau import boundary_grid, write_boundary_animation
from otgap.train.landau import LandauRun, accuracy, train_landau_run
from otgap.train.provenance import provenance

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = dict(smk.params.boundary)
    name, layers = smk.wildcards.dataset, int(smk.wildcards.layers)
    x, y = make_toy2d(name, n_samples=p["n_samples"], seed=p["data_seed"])
    xt, yt = torch.from_numpy(x).reshape(-1, 1, 1, 2), torch.from_numpy(y)
    data = ClassificationData(name, xt, yt, xt, yt, n_classes=2)
    xx, yy = boundary_grid(p["grid"])
    grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], axis=1)).reshape(-1, 1, 1, 2)
    frames = []

    def record(epoch, model):
        if epoch % p["frame_every"] and epoch != p["epochs"]:
            return
        model.eval()
        with torch.no_grad():
            pred = model(grid).argmax(dim=-1).reshape(xx.shape).numpy()
        frames.append((epoch, accuracy(model, xt, yt), pred.astype(np.float32)))
        model.train()

    run = LandauRun(
        model=f"landau{layers}", seed=p["seed"], noise_sigmas=(), **dict(smk.params.settings)
    )
    _, summary = train_landau_run(data, run, on_epoch=record, log=log)
    title = f"{layers}-layer Landau net + Langevin, {name}"
    write_boundary_animation(x, y, xx, yy, frames, smk.output.gif, smk.output.png, title, p["fps"])
    summary.pop("wall_s")
    write_json(smk.output.run_json, {**summary, "frames": len(frames), **provenance(p)})
    log(f"{len(frames)} frames; final train accuracy {summary['test_acc']:.3f}")
