"""Macros of this run's settings and the original-settings run's (rule paper_settings)."""

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper.settings import settings_macros

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    settings = smk.params.settings
    this = settings_macros(settings["this"], "Cfg")
    other = settings_macros(settings.get("other"), "Orig")
    text = this.render("settings of this run (rule paper_settings)") + other.render(
        "settings of the original code (config/original.yaml over config/config.yaml)"
    )
    write_text(smk.output.macros, text)
    log(f"{len(this.macros) + len(other.macros)} macros")
