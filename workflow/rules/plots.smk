rule plot_all_sites:
    input:
        data=data_file(),
    output:
        report(
            "results/all_sites_boxplot.png",
            caption="../report/all_sites_boxplot.rst",
            category="data",
            labels={"figure": "all sites"},
        ),
    log:
        "logs/plot_all_sites.log",
    benchmark:
        "benchmarks/plot_all_sites.tsv"
    conda:
        ENV
    resources:
        **scaled(800),
    params:
        settings=settings("outcome", "group", "plots") | reading(),
    script:
        "../../scripts/plot_all_sites.py"


rule plot_selection:
    input:
        data="results/{selection}/data.csv",
    output:
        histogram=reported("results/{selection}/figures/histogram.png", "histogram", "data", figure="histogram"),
        sites=reported("results/{selection}/figures/sites.png", "sites", "data", figure="by site"),
    log:
        "logs/plot_selection/{selection}.log",
    benchmark:
        "benchmarks/plot_selection/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(1000),
    params:
        settings=settings("outcome", "group", "plots"),
    script:
        "../../scripts/plot_selection.py"


rule plot_fits:
    input:
        data="results/{selection}/data.csv",
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
        summaries=per_model("results/{selection}/{model}/summary.csv"),
        formulas=per_formula("results/{selection}/formulas/{formula}/posterior.nc"),
    output:
        **{f"trace_{m}": path for m, path in model_outputs("trace.png", "trace", "figure").items()},
        forest=reported("results/{selection}/figures/forest.png", "forest", "comparison", figure="forest"),
    log:
        "logs/plot_fits/{selection}.log",
    benchmark:
        "benchmarks/plot_fits/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(1500),
    params:
        models=MODELS,
        formulas=FORMULAS,
        settings=settings("outcome", "group", "plots"),
    script:
        "../../scripts/plot_fits.py"


rule plot_checks:
    input:
        unpack(check_figure_inputs),
    output:
        **{f"ppc_{m}": path for m, path in model_outputs("ppc.png", "ppc", "figure").items()},
        **{
            Path(path).stem: reported(path, caption_for(path), "comparison", figure=Path(path).stem)
            for path in selection_figures("{selection}")
            if Path(path).name != "forest.png"
        },
    log:
        "logs/plot_checks/{selection}.log",
    benchmark:
        "benchmarks/plot_checks/{selection}.tsv"
    conda:
        ENV
    resources:
        **scaled(1000),
    params:
        models=MODELS,
        new_sites=NEW_SITES,
        settings=settings("outcome", "group", "plots"),
    script:
        "../../scripts/plot_checks.py"
