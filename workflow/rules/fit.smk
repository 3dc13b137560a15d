# One job per model: a model finished is never removed with another model's failed or cancelled job.
rule fit:
    input:
        data="results/{selection}/data.csv",
    output:
        posterior="results/{selection}/{model}/posterior.nc",
        predictive="results/{selection}/{model}/posterior_predictive.nc",
        graph=reported("results/{selection}/{model}/graph.png", "graph", "{model}", figure="graph.png"),
    log:
        "logs/fit/{selection}/{model}.log",
    benchmark:
        "benchmarks/fit/{selection}/{model}.tsv"
    # fits first: every table and most figures wait for them, the data figures do not
    priority: 1
    conda:
        ENV
    threads: fit_threads
    resources:
        **scaled(1500, runtime=30),
    params:
        compiledir=compile_cache,
        settings=lambda wildcards: settings("outcome", "group", "sampling", "storage")
        | {
            "models": {wildcards.model: config["models"][wildcards.model]},
            "convergence": gate_thresholds(),
            "data": data_name(),
        },
    script:
        "../../scripts/fit.py"


rule predict_new_site:
    input:
        data=data_file(),
        posterior=f"results/{{selection}}/{POPULATION}/posterior.nc",
    output:
        f"results/{{selection}}/{POPULATION}/new_site_{{site}}.nc",
    log:
        "logs/predict_new_site/{selection}/{site}.log",
    benchmark:
        "benchmarks/predict_new_site/{selection}/{site}.tsv"
    conda:
        ENV
    resources:
        **scaled(800),
    params:
        model=POPULATION,
        settings=settings("outcome", "group", "storage") | reading() | {"data": data_name()},
    script:
        "../../scripts/predict_new_site.py"
