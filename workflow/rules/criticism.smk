# Leave one site out: one job per site of a selection, so that on a cluster the folds run in parallel.
rule leave_one_site_out:
    input:
        data="results/{selection}/data.csv",
        source=data_file() if FOLD_FITTED_FORMULAS else [],
    output:
        "results/{selection}/leave_one_site_out/{held_out}.csv",
    log:
        "logs/leave_one_site_out/{selection}/{held_out}.log",
    benchmark:
        "benchmarks/leave_one_site_out/{selection}/{held_out}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        **scaled(1300, runtime=30),
    params:
        compiledir=fold_compile_cache,
        settings=settings("outcome", "group", "sampling", "storage")
        | reading()
        | {
            "models": {model: config["models"][model] for model in PREDICTING_MODELS},
            "formulas": fold_formulas(),
            "formula_priors": config["models"] if FOLD_FITTED_FORMULAS else {},
            "convergence": gate_thresholds(),
        },
    script:
        "../../scripts/leave_one_site_out.py"


rule leave_one_site_out_summary:
    input:
        folds=held_out_folds,
    output:
        table=reported(
            "results/{selection}/tables/leave_one_site_out.csv",
            "leave_one_site_out",
            "leave one site out",
            table="leave_one_site_out.csv",
        ),
        comparison=reported(
            "results/{selection}/tables/leave_one_site_out_comparison.csv",
            "leave_one_site_out_comparison",
            "leave one site out",
            table="leave_one_site_out_comparison.csv",
        ),
        figure=reported(
            "results/{selection}/figures/leave_one_site_out.png",
            "leave_one_site_out_plot",
            "leave one site out",
            figure="leave_one_site_out.png",
        ),
    log:
        "logs/leave_one_site_out_summary/{selection}.log",
    benchmark:
        "benchmarks/leave_one_site_out_summary/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(800),
    params:
        settings=settings("outcome", "plots"),
    script:
        "../../scripts/leave_one_site_out_summary.py"


rule calibration:
    input:
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
        predictives=per_model("results/{selection}/{model}/posterior_predictive.nc"),
    output:
        table=reported("results/{selection}/tables/loo_pit.csv", "loo_pit", "calibration", table="loo_pit.csv"),
        figure=reported("results/{selection}/figures/loo_pit.png", "loo_pit_plot", "calibration", figure="loo_pit.png"),
    log:
        "logs/calibration/{selection}.log",
    benchmark:
        "benchmarks/calibration/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(2000),
    params:
        models=MODELS,
        settings=settings("plots"),
    script:
        "../../scripts/calibration.py"


rule prior_checks:
    input:
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
    output:
        predictive=reported(
            "results/{selection}/tables/prior_predictive.csv",
            "prior_predictive",
            "priors",
            table="prior_predictive.csv",
        ),
        sensitivity=reported(
            "results/{selection}/tables/prior_sensitivity.csv",
            "prior_sensitivity",
            "priors",
            table="prior_sensitivity.csv",
        ),
        figure=reported(
            "results/{selection}/figures/prior_predictive.png",
            "prior_predictive_plot",
            "priors",
            figure="prior_predictive.png",
        ),
    log:
        "logs/prior_checks/{selection}.log",
    benchmark:
        "benchmarks/prior_checks/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(1500),
    params:
        models=MODELS,
        settings=settings("outcome", "plots"),
    script:
        "../../scripts/prior_checks.py"
