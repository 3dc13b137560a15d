# One job fits every model of a selection: the libraries are imported once, not once per model.
rule fit:
    input:
        data="results/{selection}/data.csv",
    output:
        **{f"graph_{m}": path for m, path in model_outputs("graph.png", "graph", "figure").items()},
        posteriors=expand("results/{{selection}}/{model}/posterior.nc", model=MODELS),
        predictives=expand("results/{{selection}}/{model}/posterior_predictive.nc", model=MODELS),
    log:
        "logs/fit/{selection}.log",
    benchmark:
        "benchmarks/fit/{selection}.tsv"
    conda:
        ENV
    threads: fit_threads()
    resources:
        **scaled(1500, runtime=30),
    params:
        compiledir=compile_cache,
        settings=settings("outcome", "group", "models", "sampling", "storage")
        | {"convergence": gate_thresholds(), "data": data_name()},
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
        settings=settings("outcome", "group", "storage") | {"data": data_name()},
    script:
        "../../scripts/predict_new_site.py"
