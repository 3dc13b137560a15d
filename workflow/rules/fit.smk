rule fit:
    input:
        data="results/{selection}/data.csv",
    output:
        posterior="results/{selection}/{model}/posterior.nc",
        predictive="results/{selection}/{model}/posterior_predictive.nc",
    log:
        "logs/fit/{selection}/{model}.log",
    benchmark:
        "benchmarks/fit/{selection}/{model}.tsv"
    params:
        compiledir=lambda wildcards: compile_cache(wildcards),
        settings=lambda wildcards: analysis_settings("outcome", "group", "sampling", "convergence", "storage")
        | {"model": config["models"][wildcards.model]},
    threads: fit_threads
    conda:
        ENV
    script:
        "../../scripts/fit.py"


rule predict_new_site:
    input:
        data=data_file(),
        posterior="results/{selection}/partial_pooling/posterior.nc",
    output:
        "results/{selection}/partial_pooling/new_site_{site}.nc",
    params:
        settings=analysis_settings("outcome", "group"),
    log:
        "logs/predict_new_site/{selection}/{site}.log",
    benchmark:
        "benchmarks/predict_new_site/{selection}/{site}.tsv"
    conda:
        ENV
    script:
        "../../scripts/predict_new_site.py"
