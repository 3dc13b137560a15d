# Bayesian hierarchical models of grouped data: three pooling models per site selection.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/formulas.smk"
include: "workflow/rules/criticism.smk"


report: "workflow/report/workflow.rst"


check_ready_to_report(rules.findings.output[0])


# Cheap steps run where Snakemake runs, not as cluster jobs.
localrules:
    all,
    subset,
    findings,
    convergence_gate,


rule all:
    default_target: True
    input:
        all_outputs(),
