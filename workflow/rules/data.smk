# Only when the data file is missing: an existing file is never re-created or overwritten.
if not Path(data_file()).exists():

    localrules:
        download_data,

    rule download_data:
        output:
            data_file(),
        log:
            "logs/download_data.log",
        params:
            url=config["data"].get("url", ""),
            sha256=config["data"].get("sha256", ""),
        conda:
            ENV
        script:
            "../../scripts/download_data.py"


rule subset:
    input:
        data=data_file(),
    output:
        "results/{selection}/data.csv",
    params:
        settings=lambda wildcards: analysis_settings("outcome", "group", "new_sites")
        | {"sites": config["selections"][wildcards.selection]},
    log:
        "logs/subset/{selection}.log",
    conda:
        ENV
    script:
        "../../scripts/subset.py"
