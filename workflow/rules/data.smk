# Only when the data file is missing: an existing file is never re-created or overwritten.
if not Path(data_file()).exists():

    localrules:
        download_data,

    rule download_data:
        output:
            data_file(),
        log:
            "logs/download_data.log",
        conda:
            ENV
        params:
            url=config["data"].get("url", ""),
            sha256=config["data"].get("sha256", ""),
        script:
            "../../scripts/download_data.py"


# A checkpoint: leave one site out has one job per site, which for `all` are known from the data.
checkpoint subset:
    input:
        data=data_file(),
    output:
        "results/{selection}/data.csv",
    log:
        "logs/subset/{selection}.log",
    conda:
        ENV
    params:
        settings=lambda wildcards: settings("outcome", "group", "new_sites")
        | reading()
        | {"sites": config["selections"][wildcards.selection], "models": MODELS},
    script:
        "../../scripts/subset.py"
