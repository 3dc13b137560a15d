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
    params:
        plots=config["plots"],
    conda:
        ENV
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
    params:
        plots=config["plots"],
    conda:
        ENV
    script:
        "../../scripts/plot_selection.py"


rule plot_models:
    input:
        data="results/{selection}/data.csv",
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
        new_sites=per_new_site("results/{selection}/partial_pooling/new_site_{site}.nc"),
        ppc_tables=per_model("results/{selection}/{model}/ppc_intervals.csv"),
        tables=lambda wildcards: expand("results/{selection}/tables/{name}", selection=wildcards.selection, name=selection_tables()),
    output:
        **{f"graph_{m}": path for m, path in model_outputs("graph.png", "graph", "figure").items()},
        **{f"trace_{m}": path for m, path in model_outputs("trace.png", "trace", "figure").items()},
        **{f"ppc_{m}": path for m, path in model_outputs("ppc.png", "ppc", "figure").items()},
        **{
            Path(path).stem: reported(path, caption_for(path), "comparison", figure=Path(path).stem)
            for path in selection_figures("{selection}")
        },
    log:
        "logs/plot_models/{selection}.log",
    benchmark:
        "benchmarks/plot_models/{selection}.tsv"
    params:
        new_sites=NEW_SITES,
        outdir=lambda wildcards: f"results/{wildcards.selection}",
        plots=config["plots"],
    conda:
        ENV
    script:
        "../../scripts/plot_models.py"
