# Formula models (config `formulas`), fitted with bambi beside the models: one fit job per formula (with
# the predictions of new sites where the formula has a term grouped by site), then per selection their
# tables and figures.
rule fit_formula:
    input:
        data=data_file(),
        rows="results/{selection}/data.csv",
    output:
        posterior="results/{selection}/formulas/{formula}/posterior.nc",
        predictive="results/{selection}/formulas/{formula}/posterior_predictive.nc",
        graph=reported(
            "results/{selection}/formulas/{formula}/graph.png", "formula_graph", "{formula}", figure="graph.png"
        ),
    log:
        "logs/fit_formula/{selection}/{formula}.log",
    benchmark:
        "benchmarks/fit_formula/{selection}/{formula}.tsv"
    wildcard_constraints:
        formula=alternatives(name for name in FORMULAS if name not in PREDICTING),
    priority: 1
    conda:
        ENV
    threads: 1
    resources:
        **scaled(2000, runtime=30),
    params:
        compiledir=formula_compile_cache,
        meaning=lambda wildcards: meaning(config["formulas"][wildcards.formula], config["outcome"], config["group"]),
        settings=lambda wildcards: settings("outcome", "group", "storage", "models")
        | reading()
        | {
            "formula": config["formulas"][wildcards.formula],
            "sampling": formula_sampling(wildcards.formula),
            "convergence": gate_thresholds(),
            "data": data_name(),
        },
    script:
        "../../scripts/fit_formula.py"


use rule fit_formula as fit_formula_predicting with:
    output:
        **{
            f"new_site_{site}": f"results/{{selection}}/formulas/{{formula}}/new_site_{site}.nc"
            for site in FORMULA_NEW_SITES
        },
        posterior="results/{selection}/formulas/{formula}/posterior.nc",
        predictive="results/{selection}/formulas/{formula}/posterior_predictive.nc",
        graph=reported(
            "results/{selection}/formulas/{formula}/graph.png", "formula_graph", "{formula}", figure="graph.png"
        ),
    wildcard_constraints:
        formula=alternatives(PREDICTING),


rule formula_tables:
    input:
        posteriors=per_formula("results/{selection}/formulas/{formula}/posterior.nc"),
        predictives=per_formula("results/{selection}/formulas/{formula}/posterior_predictive.nc"),
        models=per_model("results/{selection}/{model}/posterior.nc"),
        predictions=list(formula_predictions("new_site_{site}.nc").values()),
        # beside the formulas' own, in formula_new_site_coverage.csv: only where a formula predicts new sites
        population_predictions=(
            per_new_site(f"results/{{selection}}/{POPULATION}/new_site_{{site}}.nc") if FORMULA_PREDICTIONS else []
        ),
    output:
        **{
            f"summary_{f}": reported(path, "formula_summary", f, table="summary.csv")
            for f, path in formula_files("summary.csv").items()
        },
        **{
            f"ppc_{f}": reported(path, "ppc_intervals", f, table="ppc_intervals.csv")
            for f, path in formula_files("ppc_intervals.csv").items()
        },
        **(
            {
                "new_site_coverage": reported(
                    "results/{selection}/tables/formula_new_site_coverage.csv",
                    "formula_new_site_coverage",
                    "formulas",
                    table="formula_new_site_coverage.csv",
                )
            }
            if FORMULA_PREDICTIONS
            else {}
        ),
        crosscheck=reported(
            "results/{selection}/tables/formula_crosscheck.csv",
            "formula_crosscheck",
            "formulas",
            table="formula_crosscheck.csv",
        ),
        convergence=reported(
            "results/{selection}/tables/formula_convergence.csv",
            "convergence",
            "formulas",
            table="formula_convergence.csv",
        ),
    log:
        "logs/formula_tables/{selection}.log",
    benchmark:
        "benchmarks/formula_tables/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(2000),
    params:
        formulas=FORMULAS,
        models=MODELS,
        predictions=list(formula_predictions("new_site_{site}.nc")),
        population=POPULATION,
        new_sites=NEW_SITES,
        settings=settings("outcome", "group", "formulas"),
    script:
        "../../scripts/formula_tables.py"


rule plot_formulas:
    input:
        posteriors=per_formula("results/{selection}/formulas/{formula}/posterior.nc"),
        ppc_tables=per_formula("results/{selection}/formulas/{formula}/ppc_intervals.csv"),
        predictions=list(formula_predictions("new_site_{site}.nc").values()),
        coverage=(["results/{selection}/tables/formula_new_site_coverage.csv"] if FORMULA_PREDICTIONS else []),
    output:
        **{
            f"trace_{f}": reported(path, "formula_trace", f, figure="trace.png")
            for f, path in formula_files("trace.png").items()
        },
        **{
            f"ppc_{f}": reported(path, "formula_ppc", f, figure="ppc.png")
            for f, path in formula_files("ppc.png").items()
        },
        **{
            f"new_site_{key}": reported(path, "formula_new_site", key.split("/")[0], figure=Path(path).name)
            for key, path in formula_predictions("new_site_{site}.png").items()
        },
    log:
        "logs/plot_formulas/{selection}.log",
    benchmark:
        "benchmarks/plot_formulas/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(1500),
    params:
        formulas=FORMULAS,
        predictions=list(formula_predictions("new_site_{site}.nc")),
        settings=settings("outcome", "group", "plots", "formulas"),
    script:
        "../../scripts/plot_formulas.py"
