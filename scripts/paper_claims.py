"""The claims table: the original's claims (paper/claims.yaml), the evidence of this run and one
verdict per claim by otgap.paper.claims.verdict (rule paper_claims)."""

from otgap.io import write_text
from otgap.jobs import job
from otgap.paper import claims as C
from otgap.paper.macros import MacroSet
from otgap.paper.numbers import format_setting
from otgap.paper.sources import read_csv_or_none

with job(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    p = smk.params
    spec = C.load_claims(smk.input.claims)
    configs = C.project_configs(p.config_dir)
    rows = C.build_rows(
        spec,
        cfg=p.config,
        original_cfg=configs["original"],
        configs=configs,
        fhn_metrics=read_csv_or_none(smk.input.fhn_metrics),
        eos_summary=read_csv_or_none(smk.input.eos_summary),
        lyapunov_path=smk.input.lyapunov,
    )
    caption = (
        "The original's claims (\\texttt{paper/claims.yaml}), the original code's settings "
        "(\\texttt{config/original.yaml}), this run's evidence and the verdict of the rule of "
        "Section~\\ref{sec:methods-claims}. $d$: the standardised effect size whose power is "
        "given; log ratio: $\\log(e_{\\text{baseline}}/e_{\\text{Neural ODE}})$ per seed. "
        "Rule \\texttt{paper\\_claims} (provenance: Table~\\ref{tab:provenance})."
    )
    write_text(smk.output.table, C.claims_table(rows, caption=caption))
    C.rows_frame(rows).to_csv(smk.output.csv, index=False)
    ms = MacroSet(prefix="Claims")
    ms.add("Alpha", format_setting(spec["alpha"]), "level of every test")
    ms.add(
        "PowerTarget",
        format_setting(spec["power_target"]),
        "power that makes a null result a 'not reproduced'",
    )
    ms.add("N", str(len(rows)), "rows of the claims table")
    for name, verdict in (("Reproduced", C.REPRODUCED), ("NotReproduced", C.NOT_REPRODUCED),
                          ("Inconclusive", C.INCONCLUSIVE), ("Substitute", C.SUBSTITUTE),
                          ("Untested", C.UNTESTED)):  # fmt: skip
        ms.add(
            f"N{name}", str(sum(r.verdict.verdict == verdict for r in rows)), f"rows '{verdict}'"
        )
    n_power = next(
        (n for n in range(2, 1000) if C.t_power(n, 1.0, spec["alpha"]) >= spec["power_target"]),
        None,
    )
    ms.add(
        "SeedsForPower",
        None if n_power is None else str(n_power),
        "seeds for the target power at d = 1",
    )
    text = ms.render("claims and verdicts (rule paper_claims)")
    text += "\\newcommand{\\ClaimsRule}{" + C.RULE_TEXT + "}\n"
    write_text(smk.output.macros, text)
    log(f"{len(rows)} claim rows: " + ", ".join(f"{r.label}={r.verdict.verdict}" for r in rows))
