import csv
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from hbm.config import (
    check_config,
    check_config_file,
    check_schema,
    describe_prior,
    missing_priors,
    normalise_labels,
    normalise_prior_names,
    resolve_references,
    sampling_settings,
    scale_priors,
)
from hbm.data import check_config_against_data, check_formulas, read_table
from hbm.errors import InputError
from hbm.cluster import advice, leftover_jobs
from hbm.locks import record_owner, release_stale_locks
from hbm.formulas import has_new_site_density, meaning, predicts_new_sites, translated_model
from hbm.models import population_model, predicting_new_sites

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
ENV = "../../envs/hbm.yaml"


def check_inputs():
    """Stop before any job with one message naming the bad key, column or value. Job processes, which
    parse the workflow again, only complete the config (schema defaults, labels as text): the main
    process has checked it and the data."""
    try:
        normalise_prior_names(config, SCHEMA)
        if workflow.is_main_process:
            for path in workflow.configfiles:
                check_config_file(path)
            check_schema(config, SCHEMA)
        validate(config, schema=str(SCHEMA))
        normalise_labels(config)
        resolve_references(config)
        frame = None
        if workflow.is_main_process:
            check_config(config)
            frame = check_data()
        complete_priors(frame)
    except InputError as error:
        raise WorkflowError(f"Invalid input: {error}") from None


def complete_priors(frame=None):
    """Priors the config leaves out, scaled to the outcome over the data file (hbm.config.scale_priors);
    recorded in the config (`scaled_priors`) for the report, and said at the start of a run. `frame`:
    the data file as `read_table` read it, if it has been read."""
    missing = missing_priors(config)
    if not missing:
        return
    data = Path(config["data"]["path"])
    if frame is None and not data.exists():
        raise InputError(
            f"config key 'models': priors left out are scaled to the data, but {data} does not exist yet; "
            "write every model's priors, or put the data file there first"
        )
    if frame is None:
        frame = read_table(data, config["outcome"], config["group"], config["data"])
    values = frame[config["outcome"]].dropna()
    if not values.std() > 0:
        raise InputError(f"config key 'models': priors cannot be scaled to {config['outcome']!r}, which does not vary")
    config["scaled_priors"] = scale_priors(config, missing, float(values.mean()), float(values.std()))
    if workflow.is_main_process:
        scaled = config["scaled_priors"]
        lines = [
            f"  {name}: {parameter} ~ {describe_prior(config['models'][name]['priors'][parameter])}"
            for name, parameters in missing.items()
            for parameter in parameters
        ]
        logger.info(
            f"Priors scaled to {config['outcome']!r} (mean {scaled['outcome_mean']:g}, sd {scaled['outcome_sd']:g} "
            "over the data file):\n" + "\n".join(lines)
        )


MANY_FOLDS = 100


def warn_many_folds(resolved):
    """Say, at the start of a run, where leave one site out refits the models more than MANY_FOLDS times."""
    if not config["criticism"]["leave_one_site_out"]:
        return
    for selection, sites in resolved.items():
        if len(sites) > MANY_FOLDS:
            logger.warning(
                f"Leave one site out refits the models once per site: {len(sites):,} fold jobs for selection "
                f"{selection!r}. Set criticism.leave_one_site_out: false to skip it."
            )


def warn_two_values(values):
    """Say where the outcome takes two values only (a yes/no outcome): the models' likelihood is Normal."""
    if values.nunique() == 2:
        low, high = sorted(values.unique())
        logger.warning(
            f"The outcome {config['outcome']!r} takes two values only ({low:g} and {high:g}): the models treat it "
            "as a Normal measurement, which a yes/no outcome is not; read their results with that in mind."
        )


def check_ready_to_report(findings):
    """`snakemake --report` before the workflow has run names a missing figure: say what to do instead.
    Snakemake offers no other sign of a report run than its command line."""
    reporting = any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv)
    if workflow.is_main_process and reporting and not Path(findings).exists():
        raise WorkflowError(
            f"There is nothing to report yet ({findings} does not exist): run the workflow first "
            "(snakemake --cores all, with the same config), then snakemake --report results/report.html"
        )


def check_data():
    """Check the config against the data file, and return the file as read (None if it is to be downloaded)."""
    data = Path(config["data"]["path"])
    if data.exists():
        frame = read_table(data, config["outcome"], config["group"], config["data"])
        resolved = check_config_against_data(config, frame, str(data))
        check_formulas(config, data, resolved)
        warn_many_folds(resolved)
        warn_two_values(frame[config["outcome"]].dropna())
        return frame
    if not config["data"].get("url"):
        raise InputError(
            f"config key 'data.path': data file {data} does not exist and no 'data.url' is set to download it"
        )


check_inputs()
# Only the main Snakemake process handles the lock: job processes (local or on cluster nodes) never do.
if workflow.is_main_process:
    LOCK_STATE = release_stale_locks()
    if LOCK_STATE == "kept":
        logger.warning(
            "This directory is locked by a run that is still going, or whose process cannot be seen from here "
            "(another host or PID namespace). If no run is going on, release it with: snakemake --unlock"
        )
    else:
        if LOCK_STATE == "released":
            logger.warning("Removed the lock left by a run in this directory whose process no longer runs.")
        # With no live run here, SLURM jobs in this folder are left over from a run that was killed.
        EARLIER_JOBS = leftover_jobs()
        if EARLIER_JOBS:
            raise WorkflowError(
                f"{len(EARLIER_JOBS)} SLURM job(s) of an earlier run in this folder are still queued or running; "
                "a new run beside them could write the same files. Wait for them, or end them with:\n"
                f"  scancel {' '.join(EARLIER_JOBS)}"
            )
        OWNER = record_owner()

SELECTIONS = list(config["selections"])
MODELS = list(config["models"])
POPULATION = population_model(MODELS)  # the model that predicts new sites, if one is configured
NEW_SITES = list(config["new_sites"]) if POPULATION else []
FORMULAS = list(config["formulas"])
# Formulas with a term grouped by the data's group predict new sites (in their fit job).
PREDICTING = [name for name in FORMULAS if predicts_new_sites(config["formulas"][name]["formula"], config["group"])]
FORMULA_NEW_SITES = list(config["new_sites"]) if PREDICTING else []
FORMULA_PREDICTIONS = [(formula, site) for formula in PREDICTING for site in FORMULA_NEW_SITES]
# Models that predict new sites are fitted once per site left out of a selection (of two or more sites).
PREDICTING_MODELS = predicting_new_sites(MODELS) if config["criticism"]["leave_one_site_out"] else []
# Formulas too where the config asks: those under which a new site's rows have a joint density.
LEFT_OUT_FORMULAS = [
    name
    for name in PREDICTING
    if config["criticism"]["leave_one_site_out"]
    and config["criticism"]["leave_one_site_out_formulas"]
    and has_new_site_density(config["formulas"][name], config["group"])
]
# A formula that is one of those models (priors: the model) is scored by the model's fit in each fold; the
# others are refitted with bambi.
FOLD_FITTED_FORMULAS = [
    name for name in LEFT_OUT_FORMULAS if not translated_model(config["formulas"][name], PREDICTING_MODELS)
]


def alternatives(names):
    """A wildcard constraint matching exactly `names` (nothing if there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    selection=alternatives(SELECTIONS),
    model=alternatives(MODELS),
    formula=alternatives(FORMULAS),
    site=alternatives(NEW_SITES),
    held_out="[^/]+",


def data_file():
    return config["data"]["path"]


def data_name():
    """The data file's name, recorded in the NetCDF files (its folder is machine-specific)."""
    return Path(data_file()).name


def selection_outputs(selection):
    """Every artifact of one selection."""
    base = f"results/{selection}"
    files = [f"{base}/figures/histogram.png", f"{base}/figures/sites.png"]
    files += [f"{base}/{model}/{name}" for model in MODELS for name in MODEL_FILES]
    files += [f"{base}/tables/{name}" for name in selection_tables()]
    files += selection_figures(selection)
    files += [f"{base}/{POPULATION}/new_site_{site}.nc" for site in NEW_SITES]
    if FORMULAS:
        files += [f"{base}/formulas/{formula}/{name}" for formula in FORMULAS for name in FORMULA_FILES]
        files += [f"{base}/tables/formula_crosscheck.csv", f"{base}/tables/formula_convergence.csv"]
        files += [
            f"{base}/formulas/{f}/new_site_{site}.{ext}" for f, site in FORMULA_PREDICTIONS for ext in ("nc", "png")
        ]
        files += [f"{base}/tables/formula_new_site_coverage.csv"] if FORMULA_PREDICTIONS else []
    files += [f"{base}/{name}" for name in criticism_outputs(selection)]
    return files


def criticism_outputs(selection):
    """The calibration, prior checks and leave one site out of a selection, where the config asks for them."""
    wanted = config["criticism"]
    files = ["tables/loo_pit.csv", "figures/loo_pit.png"] if wanted["calibration"] else []
    if wanted["prior_checks"]:
        files += ["tables/prior_predictive.csv", "tables/prior_sensitivity.csv", "figures/prior_predictive.png"]
    if leaves_sites_out(selection):
        files += [f"tables/{name}" for name in ("leave_one_site_out.csv", "leave_one_site_out_comparison.csv")]
        files += ["figures/leave_one_site_out.png"]
    return files


def checked(check):
    """The selections that criticism check `check` (calibration, prior_checks) runs on: all, or none."""
    return SELECTIONS if config["criticism"][check] else []


def tables_named(name, selections):
    """The table `name` of each of `selections`."""
    return expand(f"results/{{selection}}/tables/{name}", selection=selections)


def selections_of(paths):
    """The selection each of `paths` (results/{selection}/...) belongs to."""
    return [Path(path).parts[1] for path in paths]


def leaves_sites_out(selection):
    """Whether each site of `selection` is predicted by the models fitted without it: needs a model that
    predicts new sites, and two sites or more."""
    sites = config["selections"][selection]
    return bool(PREDICTING_MODELS or LEFT_OUT_FORMULAS) and (not isinstance(sites, list) or len(sites) > 1)


LEAVING_SITES_OUT = [selection for selection in SELECTIONS if leaves_sites_out(selection)]


def held_out_folds(wildcards):
    """One fold per site of the selection, read from its data (which may be downloaded first)."""
    path = checkpoints.subset.get(selection=wildcards.selection).output[0]
    with open(path, encoding="utf-8") as handle:
        sites = dict.fromkeys(row[config["group"]] for row in csv.DictReader(handle))
    return [f"results/{wildcards.selection}/leave_one_site_out/{site}.csv" for site in sites]


def fold_compile_cache(wildcards):
    """A compile cache of each fold's own: folds run in parallel."""
    return str(Path(config["cache_dir"]) / "pytensor" / wildcards.selection / "leave_one_site_out" / wildcards.held_out)


MODEL_FILES = [
    "posterior.nc",
    "posterior_predictive.nc",
    "summary.csv",
    "ppc_intervals.csv",
    "graph.png",
    "trace.png",
    "ppc.png",
]


FORMULA_FILES = MODEL_FILES  # a formula has what a model has


def selection_tables():
    names = ["mu_comparison.csv", "loo_comparison.csv", "convergence.csv"]
    if POPULATION:
        names += ["variance_decomposition.csv", "shrinkage.csv", "new_site_coverage.csv"]
    return names


def selection_figures(selection):
    base = f"results/{selection}/figures"
    files = [f"{base}/forest.png"]
    if POPULATION:
        files += [f"{base}/shrinkage.png", f"{base}/icc.png"] + [f"{base}/new_site_{site}.png" for site in NEW_SITES]
    return files


def other_outputs():
    """Every artifact but the run's convergence verdict."""
    files = ["results/all_sites_boxplot.png"]
    for selection in SELECTIONS:
        files += selection_outputs(selection)
    return files


def convergence_tables():
    """Each selection's convergence verdicts: of its models, then of its formulas."""
    names = ["convergence.csv"] + (["formula_convergence.csv"] if FORMULAS else [])
    return [f"results/{selection}/tables/{name}" for selection in SELECTIONS for name in names]


def all_outputs():
    return other_outputs() + ["results/findings.txt", "results/convergence_gate.txt"]


def per_model(pattern):
    """Input function: `pattern` for every model of the job's selection."""
    return lambda wildcards: expand(pattern, selection=wildcards.selection, model=MODELS)


def per_formula(pattern):
    """Input function: `pattern` for every formula of the job's selection."""
    return lambda wildcards: expand(pattern, selection=wildcards.selection, formula=FORMULAS)


def formula_files(name):
    """One file per formula: {formula: path}, named `name` inside the formula's folder."""
    return {formula: f"results/{{selection}}/formulas/{formula}/{name}" for formula in FORMULAS}


def formula_predictions(name):
    """One file per formula and new site it predicts: {"formula/site": path}, named `name` with the site."""
    return {
        f"{f}/{site}": f"results/{{selection}}/formulas/{f}/{name.format(site=site)}" for f, site in FORMULA_PREDICTIONS
    }


def formula_sampling(name):
    """The `sampling` settings of formula `name`: the shared ones with its own overrides applied."""
    return config["sampling"] | config["formulas"][name].get("sampling", {})


def fold_formulas():
    """What a fold needs of each formula it scores: the formula and its sampling settings where bambi
    refits it, else the model whose fit scores it (`scored_by`)."""
    return {
        name: (
            config["formulas"][name] | {"sampling": formula_sampling(name)}
            if name in FOLD_FITTED_FORMULAS
            else {"scored_by": translated_model(config["formulas"][name], PREDICTING_MODELS)}
        )
        for name in LEFT_OUT_FORMULAS
    }


def formula_compile_cache(wildcards):
    return str(Path(config["cache_dir"]) / "pytensor" / wildcards.selection / "formulas" / wildcards.formula)


def per_new_site(pattern):
    return lambda wildcards: expand(pattern, selection=wildcards.selection, site=NEW_SITES)


def compile_cache(wildcards):
    """A PyTensor compile cache of the job's own, kept between runs: parallel jobs never share one."""
    return str(Path(config["cache_dir"]) / "pytensor" / wildcards.selection / wildcards.model)


def reported(path, caption, subcategory, **labels):
    """A report() output of one selection, captioned by workflow/report/{caption}.rst."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="{selection}",
        subcategory=subcategory,
        labels=labels,
    )


def model_outputs(name, caption, label):
    """One reported file per model: {model: path}, named `name` inside the model's folder."""
    return {
        model: reported(f"results/{{selection}}/{model}/{name}", caption, model, **{label: name}) for model in MODELS
    }


def caption_for(path):
    """Caption name of a per-selection figure: new-site figures share one caption, and the shrinkage
    figure has its own beside the shrinkage table's."""
    stem = Path(path).stem
    return "new_site" if stem.startswith("new_site_") else {"shrinkage": "shrinkage_plot"}.get(stem, stem)


def settings(*keys):
    """The config values a step uses, as its params: the step sees nothing else, and a change to
    them reruns it."""
    return {key: config.get(key) for key in keys}


def reading():
    """How the data file is written (separator, decimal mark, missing values), for the steps that read it."""
    return {"reading": {key: config["data"][key] for key in ("sep", "decimal", "na_values")}}


def gate_thresholds():
    """The gate's thresholds, which the fit records its verdict against (`on_failure` acts only at the end)."""
    return {key: value for key, value in config["convergence"].items() if key != "on_failure"}


def check_figure_inputs(wildcards):
    """The tables and predictions the check figures are drawn from, named as the script reads them."""
    base = f"results/{wildcards.selection}"
    inputs = {
        "data": f"{base}/data.csv",
        "ppc_tables": [f"{base}/{model}/ppc_intervals.csv" for model in MODELS],
        "new_sites": [f"{base}/{POPULATION}/new_site_{site}.nc" for site in NEW_SITES],
        "convergence": f"{base}/tables/convergence.csv",
    }
    if POPULATION:
        inputs["population_posterior"] = f"{base}/{POPULATION}/posterior.nc"
        for name in ("variance_decomposition", "new_site_coverage", "shrinkage"):
            inputs[name] = f"{base}/tables/{name}.csv"
    return inputs


def scaled(mem_mb, runtime=15):
    """A job's memory (MB) and time (minutes), sized from the peaks of the default analysis (the last
    line of each step's log, doubled) and multiplied by the attempt, so a retry after running out of memory
    or time asks for more. In the rules, so `--default-resources` or `--set-resources` on the command
    line add to them instead of replacing them."""
    return {
        "mem_mb": lambda wildcards, attempt: mem_mb * attempt,
        "runtime": lambda wildcards, attempt: runtime * attempt,
    }


def fit_threads(wildcards):
    """nutpie's chains take well under a second together (the likelihood is O(sites)), so a fit asks
    for one CPU and leaves the others to parallel jobs; PyMC's own sampler runs one process per chain."""
    sampling = sampling_settings(config, wildcards.model)
    return 1 if sampling["sampler"] == "nutpie" else min(sampling["chains"], 4)


def explain_failures(logs):
    """After a failed run: which resource to raise for jobs that ran out of time or memory on SLURM."""
    for path in [logs] if isinstance(logs, str) else logs:
        for line in advice(Path(path).read_text(errors="replace")):
            logger.error(line)


def forget_owner():
    """This run is over: it no longer owns the directory's lock."""
    if "OWNER" in globals():
        OWNER.unlink(missing_ok=True)


onsuccess:
    forget_owner()


onerror:
    forget_owner()
    explain_failures(log)
