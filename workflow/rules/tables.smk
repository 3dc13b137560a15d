rule tables:
    input:
        data="results/{selection}/data.csv",
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
        predictives=per_model("results/{selection}/{model}/posterior_predictive.nc"),
        new_sites=per_new_site(f"results/{{selection}}/{POPULATION}/new_site_{{site}}.nc"),
    output:
        **{f"summary_{m}": path for m, path in model_outputs("summary.csv", "summary", "table").items()},
        **{f"ppc_{m}": path for m, path in model_outputs("ppc_intervals.csv", "ppc_intervals", "table").items()},
        **{
            name.removesuffix(".csv"): reported(
                f"results/{{selection}}/tables/{name}", name.removesuffix(".csv"), "comparison", table=name
            )
            for name in selection_tables()
            if name != "loo_comparison.csv"
        },
    log:
        "logs/tables/{selection}.log",
    benchmark:
        "benchmarks/tables/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(2000),
    params:
        models=MODELS,
        new_sites=NEW_SITES,
        settings=settings("outcome", "group"),
    script:
        "../../scripts/tables.py"


rule loo_comparison:
    input:
        data="results/{selection}/data.csv",
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
        formulas=per_formula("results/{selection}/formulas/{formula}/posterior.nc"),
        source=data_file() if FORMULAS else [],
    output:
        reported(
            "results/{selection}/tables/loo_comparison.csv", "loo_comparison", "comparison", table="loo_comparison.csv"
        ),
    log:
        "logs/loo_comparison/{selection}.log",
    benchmark:
        "benchmarks/loo_comparison/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(2500),
    params:
        formulas=FORMULAS,
        settings=settings("outcome", "group", "models", "formulas") | reading(),
    script:
        "../../scripts/loo_comparison.py"


# Written whatever the gate's verdict, as soon as the tables it reads are.
rule findings:
    input:
        tables=convergence_tables(),
        prior_predictive=tables_named("prior_predictive.csv", checked("prior_checks")),
        prior_sensitivity=tables_named("prior_sensitivity.csv", checked("prior_checks")),
        calibration=tables_named("loo_pit.csv", checked("calibration")),
        loo=tables_named("loo_comparison.csv", SELECTIONS),
        logo=tables_named("leave_one_site_out_comparison.csv", LEAVING_SITES_OUT),
    output:
        report("results/findings.txt", caption="../report/findings.rst", category="findings"),
    log:
        "logs/findings.log",
    conda:
        ENV
    params:
        selections=SELECTIONS,
        tables_of=selections_of(convergence_tables()),
        selections_with_priors=checked("prior_checks"),
        selections_with_calibration=checked("calibration"),
        selections_leaving_sites_out=LEAVING_SITES_OUT,
        outcome=config["outcome"],
    script:
        "../../scripts/findings.py"


# Last: under `on_failure: stop` a failed fit ends the run here, after every other result is written.
rule convergence_gate:
    input:
        tables=convergence_tables(),
        findings="results/findings.txt",
        everything_else=other_outputs(),
    output:
        "results/convergence_gate.txt",
    log:
        "logs/convergence_gate.log",
    conda:
        ENV
    params:
        selections=selections_of(convergence_tables()),
        on_failure=config["convergence"]["on_failure"],
    script:
        "../../scripts/convergence_gate.py"
