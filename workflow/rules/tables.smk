rule tables:
    input:
        data="results/{selection}/data.csv",
        posteriors=per_model("results/{selection}/{model}/posterior.nc"),
        predictives=per_model("results/{selection}/{model}/posterior_predictive.nc"),
        new_sites=per_new_site("results/{selection}/partial_pooling/new_site_{site}.nc"),
    output:
        **{f"summary_{m}": path for m, path in model_outputs("summary.csv", "summary", "table").items()},
        **{f"ppc_{m}": path for m, path in model_outputs("ppc_intervals.csv", "ppc_intervals", "table").items()},
        **{
            name.removesuffix(".csv"): reported(
                f"results/{{selection}}/tables/{name}", name.removesuffix(".csv"), "comparison", table=name
            )
            for name in selection_tables()
        },
    log:
        "logs/tables/{selection}.log",
    benchmark:
        "benchmarks/tables/{selection}.tsv"
    params:
        new_sites=NEW_SITES,
        outdir=lambda wildcards: f"results/{wildcards.selection}",
    conda:
        ENV
    script:
        "../../scripts/tables.py"
