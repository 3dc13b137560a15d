rule fit:
    input:
        data="results/{selection}/data.csv",
    output:
        posterior="results/{selection}/{model}/posterior.nc",
    log:
        "logs/fit/{selection}/{model}.log",
    benchmark:
        "benchmarks/fit/{selection}/{model}.tsv"
    params:
        compiledir=lambda wildcards: compile_cache(wildcards),
        settings=lambda wildcards: analysis_settings("outcome", "group", "sampling", "convergence", "storage")
        | {"model": config["models"][wildcards.model]},
    threads: min(config["sampling"]["chains"], 4)
    conda:
        ENV
    script:
        "../../scripts/fit.py"


rule posterior_predictive:
    input:
        data="results/{selection}/data.csv",
        posterior="results/{selection}/{model}/posterior.nc",
    output:
        "results/{selection}/{model}/posterior_predictive.nc",
    params:
        settings=analysis_settings("storage"),
    log:
        "logs/posterior_predictive/{selection}/{model}.log",
    benchmark:
        "benchmarks/posterior_predictive/{selection}/{model}.tsv"
    conda:
        ENV
    script:
        "../../scripts/posterior_predictive.py"


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
