# The paper as a build product, the last stage of the DAG.
#   generated parts  {R}/paper/generated/{fhn,eos,settings,compare}_*.tex, figures copied beside
#                    them, system_<name>.tex for each other system whose result tables exist
#   document         {R}/paper/main.pdf (latexmk in {R}/paper/build/, not a declared output)
# Each generated part has its own rule, so a changed aggregate table reruns that part and the PDF.
# paper.build_pdf: auto | true | false (see otgap.paper.build.decide_build).
import sys
from glob import glob

from otgap.config import merge
from otgap.paper.build import PaperBuildError, missing_tex, plan_build

PAPER = config.get("paper", {})
P = f"{R}/paper"
G = f"{P}/generated"
PAPER_SOURCES = sorted(
    repo_path(p.relative_to(REPO))
    for p in [
        REPO / "paper" / "main.tex",
        REPO / "paper" / "references.bib",
        *(REPO / "paper" / "sections").glob("*.tex"),
    ]
)
PAPER_SYSTEMS = ("landau", "biostatis", "ode_solver")

# Planning never needs TeX (dry runs, `make plan`, every job before the paper): a required PDF
# stays planned and TeX is checked by the paper_pdf job at its start and at start-up (below) by a
# local run that is to build it.
try:
    PAPER_BUILD, _paper_warning = plan_build(PAPER.get("build_pdf", "auto"))
except PaperBuildError as exc:
    raise WorkflowError(str(exc)) from None
if _paper_warning:
    print(f"WARNING: {_paper_warning}", file=sys.stderr)


def check_tex_at_start(log=None):
    """Before the first job of a local run whose jobs include paper_pdf: stop when TeX is missing,
    rather than after hours of training (a cluster's nodes may have a TeX the login node lacks,
    so remote runs leave the check to the job)."""
    if not workflow.local_exec or not missing_tex():
        return
    if any(job.rule.name == "paper_pdf" for job in workflow.dag.needrun_jobs()):
        from otgap.paper.build import require_tex

        try:
            require_tex()
        except PaperBuildError as exc:
            raise WorkflowError(
                f"{exc}; or leave the PDF out with `--omit-from paper_pdf`"
            ) from None


def paper_system_tables(name):
    """Result tables (CSV) of system ``name`` that this run builds (``systems_targets()``), under
    systems/<name>/, tables/<name>/ or aggregate/<name>/.

    Only declared targets, never a glob of what exists: the input set of a paper job must be the
    same before and after the run, or Snakemake reruns it on the next invocation.
    """
    prefixes = tuple(
        f"{R}/{stage}/{name}/" for stage in ("systems", "tables", "aggregate")
    )
    return sorted(
        {
            path
            for path in map(str, systems_targets())
            if path.endswith(".csv")
            and path.startswith(prefixes)
            and "/a1_reference/"
            not in path  # A.1's section shows it (paper_fhn_reference)
        }
    )


def paper_fhn_reference_enabled():
    ode = config.get("systems", {}).get("ode_solver", {})
    return bool(ode.get("a1_reference", {}).get("enabled", False))


def paper_system_provenance(wildcards):
    """(rule, script) that make each table of a system, for the captions."""
    out = {}
    for rule_ in workflow.rules:
        for path in map(str, rule_.output):
            if "{" not in path:
                out[path] = (rule_.name, str(rule_.script or "unknown"))

    def maker(table):
        if table in out:
            return out[table]
        # a table made by a rule with wildcards: the rule whose output pattern matches it
        for rule_ in workflow.rules:
            if rule_.is_producer(table):
                return (rule_.name, str(rule_.script or "none"))
        return ("not found", "not found")

    return {t: maker(t) for t in paper_system_tables(wildcards.system)}


def paper_systems():
    return [name for name in PAPER_SYSTEMS if paper_system_tables(name)]


def paper_eos_figures():
    """(comparison figure of the first dataset/model/loss group, multiseed figure of its first
    full-batch GD configuration, else its first configuration)."""
    group, _ = _eos_unique(EOS_GROUP_KEYS)[0]
    configs = [
        cfg
        for cfg, _ in _eos_unique(EOS_CONFIG_KEYS)
        if all(cfg[k] == group[k] for k in EOS_GROUP_KEYS)
    ]
    cfg = next((c for c in configs if c["optimizer"] == "gd"), configs[0])
    return {
        "comparison": f"{EOS_FIG}/"
        + EOS_GROUP_TAIL.format(**group)
        + "/comparison.pdf",
        "multiseed": f"{EOS_FIG}/" + EOS_CONFIG_TAIL.format(**cfg) + "/multiseed.pdf",
    }


def paper_compare_reference():
    """(folder, usable, why) of the kept reference result of the original-settings run,
    docs/reference/<compare_run>/, checked against its digest (otgap.paper.reference).
    """
    from otgap.paper.reference import reference_status

    ref = REPO / "docs" / "reference" / PAPER["compare_run"]
    ok, why = reference_status(
        ref, REPO / "config" / f"{PAPER['compare_run']}.yaml", REPO
    )
    return ref, ok, why


def paper_other_run():
    """Summary files of the original-settings run's reference when it is current (else none:
    the paper omits the comparison table and says how to make the reference)."""
    ref, ok, _ = paper_compare_reference()
    if not ok:
        return {"other_lyapunov": []}
    return {
        "other_fhn_stats": str(ref / "aggregate/fhn/stats.csv"),
        "other_eos_summary": str(ref / "aggregate/eos/summary.csv"),
        "other_lyapunov": [str(ref / "data/fhn/system=fhn/lyapunov.json")],
    }


def paper_compare_settings():
    """Settings of this config and of the original code as written: config/original.yaml over
    config.yaml, never an overlay of it (original_quick shrinks the original's sizes).
    """
    other_file = REPO / "config" / "original.yaml"
    other = None
    if other_file.is_file():
        import yaml

        base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        other = merge(base, yaml.safe_load(other_file.read_text()) or {})
    return {"this": config, "other": other}


def paper_generated():
    parts = [
        f"{G}/{name}"
        for name in (
            "fhn_macros.tex",
            "fhn_table.tex",
            "fhn_figure.tex",
            "fhn_figure2.pdf",
            "eos_macros.tex",
            "eos_table.tex",
            "eos_figures.tex",
            "eos_comparison.pdf",
            "eos_multiseed.pdf",
            "settings_macros.tex",
            "compare_table.tex",
            "compare_macros.tex",
            "claims_table.tex",
            "claims_macros.tex",
            "scope_table.tex",
            "scope_cost.tex",
            "scope_macros.tex",
            "provenance_table.tex",
        )
    ]
    if paper_fhn_reference_enabled():
        parts.append(f"{G}/fhn_reference.tex")
    return parts + [f"{G}/system_{name}.tex" for name in paper_systems()]


def paper_targets():
    """The PDF and every generated part when it is built (so a deleted part is planned again,
    not only a missing PDF); the generated parts alone when auto skips it; else nothing.
    """
    if PAPER_BUILD:
        return [f"{P}/main.pdf", *paper_generated()]
    return paper_generated() if PAPER.get("build_pdf", "auto") == "auto" else []


localrules:
    paper_settings,
    paper_claims,
    paper_scope,


rule paper_fhn:
    input:
        **script_inputs(
            "scripts/paper_fhn.py",
            stats=f"{R}/aggregate/fhn/stats.csv",
            sidecar=f"{R}/aggregate/fhn/metrics.json",
            lyapunov=f"{R}/data/fhn/system={FHN['systems'][0]}/lyapunov.json",
            figure=fhn_figure_files("pdf")[0],
        ),
    output:
        macros=f"{G}/fhn_macros.tex",
        table=report(
            f"{G}/fhn_table.tex",
            caption="../report/paper_tables.rst",
            category="A.1 Irregular sampling",
            subcategory="paper tables",
        ),
        figure_tex=f"{G}/fhn_figure.tex",
        figure=report(
            f"{G}/fhn_figure2.pdf",
            caption="../report/paper_fhn_figure.rst",
            category="A.1 Irregular sampling",
            subcategory="figures",
        ),
    log:
        f"{L}/paper/fhn.log",
    threads: 1
    resources:
        **res("default"),
    params:
        system=FHN["systems"][0],
        conditions=FHN["conditions"],
        models=list(FHN["models"]),
        seeds=list(FHN["seeds"]),
        reference=FHN_ANALYSIS["reference"],
        metrics=FHN_ANALYSIS["table_metrics"],
        focus_condition=FHN_ANALYSIS["focus_condition"],
    script:
        "../../scripts/paper_fhn.py"


rule paper_fhn_reference:
    input:
        **script_inputs(
            "scripts/paper_fhn_reference.py",
            tex=f"{R}/systems/ode_solver/a1_reference/table.tex",
            info=f"{R}/systems/ode_solver/a1_reference/table.json",
        ),
    output:
        tex=f"{G}/fhn_reference.tex",
    log:
        f"{L}/paper/fhn_reference.log",
    threads: 1
    resources:
        **res("default"),
    script:
        "../../scripts/paper_fhn_reference.py"


rule paper_eos:
    input:
        **script_inputs(
            "scripts/paper_eos.py",
            summary=f"{EOS_AGG}/summary.csv",
            sidecar=f"{EOS_AGG}/aggregate.json",
            **paper_eos_figures(),
        ),
    output:
        macros=f"{G}/eos_macros.tex",
        table=report(
            f"{G}/eos_table.tex",
            caption="../report/paper_tables.rst",
            category="A.2 Edge of Stability",
            subcategory="paper tables",
        ),
        figures_tex=f"{G}/eos_figures.tex",
        comparison=f"{G}/eos_comparison.pdf",
        multiseed=f"{G}/eos_multiseed.pdf",
    log:
        f"{L}/paper/eos.log",
    threads: 1
    resources:
        **res("default"),
    script:
        "../../scripts/paper_eos.py"


rule paper_settings:
    input:
        **script_inputs("scripts/paper_settings.py"),
    output:
        macros=f"{G}/settings_macros.tex",
    log:
        f"{L}/paper/settings.log",
    params:
        settings=paper_compare_settings(),
    script:
        "../../scripts/paper_settings.py"


PAPER_CONFIGS = sorted(
    repo_path(p.relative_to(REPO)) for p in (REPO / "config").glob("*.yaml")
)


def paper_run_targets():
    """Every non-paper artifact of the run: the scope job reads the benchmark files of all jobs."""
    return [
        *fhn_data_targets(),
        *fhn_targets(),
        *eos_train_targets(),
        *eos_analysis_targets(),
        *systems_targets(),
    ]


def paper_provenance_makers():
    """(rule, script) of every sidecar JSON this run writes at a fixed path under {R}/ (the
    aggregate and table sidecars the paper's captions point to), for the appendix table.
    """
    out = {}
    for rule_ in workflow.rules:
        for path in map(str, rule_.output):
            if (
                "{" in path
                or not path.endswith(".json")
                or not path.startswith(f"{R}/")
            ):
                continue
            out[path] = (rule_.name, str(rule_.script or "none"))
    # the other systems' tables: the sidecar beside each table, else the first sidecar in its
    # folder or in the system's aggregate/ and systems/ folders (a table rule that writes none,
    # e.g. biostatis_table, is described by the sidecar of the rule it reads)
    for name in paper_systems():
        for table in paper_system_tables(name):
            folders = [
                Path(table).parent,
                Path(f"{R}/aggregate/{name}"),
                Path(f"{R}/systems/{name}"),
            ]
            found = [Path(table).with_suffix(".json")]
            found += [
                j for d in folders if d.is_dir() for j in sorted(d.rglob("*.json"))[:1]
            ]
            side = next((j for j in found if j.is_file()), None)
            if side is not None:
                out.setdefault(str(side), paper_producer(str(side)))
    return out


def paper_producer(path):
    """(rule, script) of the rule whose output (pattern) matches ``path``."""
    for rule_ in workflow.rules:
        if path in map(str, rule_.output) or rule_.is_producer(path):
            return (rule_.name, str(rule_.script or "none"))
    return ("not found", "not found")


# The original's claims with one verdict each (otgap.paper.claims; claims in paper/claims.yaml).
rule paper_claims:
    input:
        **script_inputs(
            "scripts/paper_claims.py",
            claims=repo_path("paper/claims.yaml"),
            configs=PAPER_CONFIGS,
            fhn_metrics=f"{R}/aggregate/fhn/metrics.csv",
            eos_summary=f"{EOS_AGG}/summary.csv",
            lyapunov=f"{R}/data/fhn/system={FHN['systems'][0]}/lyapunov.json",
        ),
    output:
        table=f"{G}/claims_table.tex",
        macros=f"{G}/claims_macros.tex",
        csv=f"{P}/claims.csv",
    log:
        f"{L}/paper/claims.log",
    params:
        config=config,
        config_dir=repo_path("config"),  # relative in the repository: params compare equal across clones
    script:
        "../../scripts/paper_claims.py"


# What was run (this config, the paper config, the original code's) and what it cost.
rule paper_scope:
    input:
        **script_inputs(
            "scripts/paper_scope.py",
            configs=PAPER_CONFIGS,
            device=f"{R}/data/fhn/system={FHN['systems'][0]}/lyapunov.json",
            run=lambda wildcards: paper_run_targets(),
        ),
    output:
        table=f"{G}/scope_table.tex",
        cost=f"{G}/scope_cost.tex",
        macros=f"{G}/scope_macros.tex",
        provenance=f"{G}/provenance_table.tex",
    log:
        f"{L}/paper/scope.log",
    params:
        makers=lambda wildcards: paper_provenance_makers(),  # after every rule file is read
        results=R,
        config=config,
        config_dir=repo_path("config"),  # relative in the repository: params compare equal across clones
        benchmarks=f"{L}/benchmarks",
    script:
        "../../scripts/paper_scope.py"


rule paper_compare:
    input:
        **script_inputs(
            "scripts/paper_compare.py",
            fhn_stats=f"{R}/aggregate/fhn/stats.csv",
            eos_summary=f"{EOS_AGG}/summary.csv",
            sidecar=f"{R}/aggregate/fhn/metrics.json",
            lyapunov=f"{R}/data/fhn/system={FHN['systems'][0]}/lyapunov.json",
            **paper_other_run(),
        ),
    output:
        table=report(
            f"{G}/compare_table.tex",
            caption="../report/paper_tables.rst",
            category="Paper",
            subcategory="what the corrections change",
        ),
        macros=f"{G}/compare_macros.tex",
    log:
        f"{L}/paper/compare.log",
    threads: 1
    resources:
        **res("default"),
    params:
        this_run=config["run"],
        other_run=PAPER["compare_run"],
        reference_status=paper_compare_reference()[2],
        condition=PAPER["compare_condition"],
        models=[
            m
            for m in ("neural_ode", "neural_ode_oracle", "lstm_dt", "odernn")
            if m in FHN["models"]
        ],
        optimizers=[o["name"] for o in EOS["optimizers"]],
    script:
        "../../scripts/paper_compare.py"


rule paper_system:
    input:
        **script_inputs(
            "scripts/paper_system.py",
            tables=lambda wc: paper_system_tables(wc.system),
        ),
    output:
        tex=f"{G}/system_{{system}}.tex",
    log:
        f"{L}/paper/system_{{system}}.log",
    wildcard_constraints:
        system="|".join(PAPER_SYSTEMS),
    threads: 1
    resources:
        **res("default"),
    params:
        makers=paper_system_provenance,
    script:
        "../../scripts/paper_system.py"


rule paper_pdf:
    input:
        **script_inputs("scripts/paper_pdf.py", sources=PAPER_SOURCES),
        # a function: evaluated once every rule file is read, so system sections are seen
        generated=lambda wildcards: paper_generated(),
    output:
        pdf=report(
            f"{P}/main.pdf",
            caption="../report/paper.rst",
            category="Paper",
            subcategory="document",
        ),
    log:
        f"{L}/paper/pdf.log",
    benchmark:
        f"{L}/benchmarks/paper/pdf.tsv"
    threads: 1
    resources:
        **res("default"),
    params:
        generated_dir=G,
        build_dir=f"{P}/build",
        systems=lambda wildcards: paper_systems(),
        source_date_epoch=PAPER["source_date_epoch"],
    script:
        "../../scripts/paper_pdf.py"
