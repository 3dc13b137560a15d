"""The whole DAG on the small test config: every artifact exists and is valid, the report is built."""

import hashlib
import json
import os
import re
import tomllib
import zipfile

import matplotlib.image
import pandas as pd
import pytest
import xarray as xr
import yaml

from hbm import io
from helpers import DATA, MODELS, ROOT, SELECTIONS, changed, load_config, run_snakemake, workflow_outputs

POSTERIOR_VARIABLES = {
    "complete_pooling": {"mu": ("chain", "draw"), "sigma": ("chain", "draw")},
    "no_pooling": {"mu": ("chain", "draw", "site"), "sigma": ("chain", "draw", "site")},
    "partial_pooling": {
        "hyper_mu": ("chain", "draw"),
        "within_variability": ("chain", "draw"),
        "between_variability": ("chain", "draw"),
        "mu": ("chain", "draw", "site"),
    },
}
LEAVE_ONE_SITE_OUT = ["site", "n", "model", "lpd", "lpd_mcse", "coverage_95"]
NEW_SITE_COVERAGE = ["site", "n", "observed_mean", "predictive_mean", "hdi_lower", "hdi_upper", "coverage", "nominal"]
TABLE_COLUMNS = {
    "summary.csv": [
        "parameter",
        "mean",
        "sd",
        "hdi_3%",
        "hdi_97%",
        "mcse_mean",
        "mcse_sd",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ],
    "ppc_intervals.csv": ["obs_id", "site", "observed", "predictive_mean", "hdi_lower", "hdi_upper", "inside"],
    "tables/mu_comparison.csv": ["site", "model", "mean", "sd", "hdi_3%", "hdi_97%"],
    "tables/loo_comparison.csv": ["model", "rank", "elpd", "p", "elpd_diff", "weight", "se", "dse"],
    "tables/convergence.csv": ["model", "divergences", "failures", "passed"],
    "tables/formula_convergence.csv": ["model", "divergences", "failures", "passed"],
    "tables/formula_crosscheck.csv": [
        "formula",
        "quantity",
        "model",
        "formula_mean",
        "model_mean",
        "difference",
        "mcse",
        "z",
        "passed",
    ],
    "tables/formula_new_site_coverage.csv": ["model", *NEW_SITE_COVERAGE],
    "tables/variance_decomposition.csv": ["quantity", "mean", "sd", "hdi_3%", "hdi_97%"],
    "tables/shrinkage.csv": ["site", "n", "observed_mean", "weight_mean", "weight_hdi_3%", "weight_hdi_97%"],
    "tables/new_site_coverage.csv": NEW_SITE_COVERAGE,
    "tables/loo_pit.csv": ["model", "rows", "uniformity_p", "pit_mean", "outside_95%", "note"],
    "tables/prior_predictive.csv": ["model", "q01", "q50", "q99", "data_inside_99", "conflict"],
    "tables/prior_sensitivity.csv": ["model", "parameter", "prior", "likelihood", "diagnosis"],
    "tables/leave_one_site_out.csv": LEAVE_ONE_SITE_OUT,
    "leave_one_site_out/": LEAVE_ONE_SITE_OUT,  # each fold's rows, gathered in the table above
    "tables/leave_one_site_out_comparison.csv": ["model", "sites", "rows", "elpd_logo", "se", "elpd_diff", "diff_se"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    config = changed(load_config("tests/config/test.yaml"), "criticism", "leave_one_site_out", True)
    workdir = tmp_path_factory.mktemp("workflow")
    run_snakemake(workdir, config, "--cores", "2", check=True)
    run_snakemake(workdir, config, "--report", "results/report.zip", check=True)
    return workdir


@pytest.fixture(scope="module")
def outputs(workdir) -> list:
    return workflow_outputs(workdir, workdir / "config.yaml")


def test_the_run_writes_exactly_the_files_its_rules_list(workdir, outputs):
    """Every output of the DAG exists, and no step wrote a file under results/ its rule does not list."""
    assert len(outputs) > 50 and all(path.is_file() for path in outputs), [p for p in outputs if not p.is_file()]
    written = {path for path in (workdir / "results").rglob("*") if path.is_file()}
    assert written - {workdir / "results" / "report.zip"} == set(outputs)


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("model", MODELS)
def test_posterior_netcdf(workdir, selection, model):
    tree = xr.open_datatree(workdir / "results" / selection / model / "posterior.nc")
    groups = {"posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood", "log_prior"}
    assert groups | {"prior", "prior_predictive"} <= set(tree.children)
    posterior = tree["posterior"]
    assert set(tree["log_prior"].data_vars) == set(load_config("tests/config/test.yaml")["models"][model]["priors"])
    assert tree["prior_predictive"]["y_est"].dims == ("chain", "draw", "obs_id")
    for name, dims in POSTERIOR_VARIABLES[model].items():
        assert posterior[name].dims == dims, name
    assert list(posterior["site"].values) == SELECTIONS[selection]
    assert posterior.sizes["chain"] == 2 and posterior.sizes["draw"] == 200
    assert tree["observed_data"]["y_est"].dims == ("obs_id",)
    assert tree["log_likelihood"]["y_est"].dims == ("chain", "draw", "obs_id")
    assert int(tree["sample_stats"]["diverging"].sum()) == int(tree.attrs["divergences"])
    attrs = tree.attrs
    assert attrs["sampler"] == "nutpie" and int(attrs["seed"]) == 2024 and attrs["model"] == model
    assert json.loads(attrs["versions"])["pymc"].startswith("6.")
    assert json.loads(attrs["settings"])["sampling"]["draws"] == 200
    assert attrs["lock_sha256"] == hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()
    assert attrs["environment_sha256"] == io.environment()["environment_sha256"]
    tree.close()


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("model", MODELS)
def test_posterior_predictive_netcdf(workdir, selection, model):
    with xr.open_datatree(workdir / "results" / selection / model / "posterior_predictive.nc") as tree:
        predictive = tree["posterior_predictive"]["y_est"]
        assert predictive.dims == ("chain", "draw", "obs_id")
        assert predictive.sizes["obs_id"] == tree["observed_data"].sizes["obs_id"]


@pytest.mark.parametrize("selection", SELECTIONS)
def test_new_site_prediction(workdir, selection):
    with xr.open_datatree(workdir / "results" / selection / "partial_pooling" / "new_site_Zurich.nc") as tree:
        assert tree["predictions"]["y_est"].dims == ("chain", "draw", "obs_id")
        assert tree["predictions"].sizes["obs_id"] == 40  # Zurich's rows
        assert tree["predictions"]["new_mu"].dims == ("chain", "draw")


@pytest.mark.parametrize("selection", SELECTIONS)
def test_formula_outputs(workdir, selection):
    """The test config's formulas: bambi's names and site means, rows dropped for a covariate's missing
    values, new-site predictions, the cross-check, and the comparison joined only where rows agree."""
    base = workdir / "results" / selection
    rows = pd.read_csv(base / "data.csv")
    with xr.open_datatree(base / "formulas" / "partial_pooling_bambi" / "posterior.nc") as tree:
        posterior = tree["posterior"]
        assert {"Intercept", "sigma", "1|Site_sigma", "1|Site", "site_mean"} <= set(posterior.data_vars)
        assert not any(name.endswith("_offset") for name in posterior.data_vars)
        assert posterior["site_mean"].sizes["site"] == rows["Site"].nunique()
        assert tree["log_likelihood"]["y_est"].sizes["obs_id"] == len(rows)
    with xr.open_datatree(base / "formulas" / "robust_age" / "posterior.nc") as tree:
        assert {"Intercept", "scale(age)", "nu"} <= set(tree["posterior"].data_vars)
        dropped = json.loads(tree.attrs["dropped_rows"])
        assert tree["observed_data"].sizes["obs_id"] == len(rows) - dropped.get("age", 0)
    for name in ("partial_pooling_bambi", "robust_age"):
        with xr.open_datatree(base / "formulas" / name / "new_site_Zurich.nc") as tree:
            assert tree["predictions"]["y_est"].dims == ("chain", "draw", "obs_id")
        assert (base / "formulas" / name / "new_site_Zurich.png").is_file()
    coverage = pd.read_csv(base / "tables" / "formula_new_site_coverage.csv")
    assert list(coverage["model"]) == ["partial_pooling", "partial_pooling_bambi", "robust_age"]
    assert (coverage["site"] == "Zurich").all() and coverage["coverage"].between(0, 1).all()
    crosscheck = pd.read_csv(base / "tables" / "formula_crosscheck.csv")
    assert set(crosscheck["formula"]) == {"partial_pooling_bambi"}
    assert len(crosscheck) == 3 + rows["Site"].nunique()
    compared = set(pd.read_csv(base / "tables" / "loo_comparison.csv")["model"])
    assert "partial_pooling_bambi" in compared
    assert ("robust_age" in compared) == (dropped.get("age", 0) == 0)


def reported_tables(outputs) -> list:
    return [path for path in outputs if path.suffix == ".csv" and path.name != "data.csv" and not is_fold(path)]


def is_fold(path) -> bool:
    return path.parent.name == "leave_one_site_out"


def documented_columns(path):
    key = (
        f"{path.parent.name}/"
        if is_fold(path)
        else f"tables/{path.name}"
        if path.parent.name == "tables"
        else path.name
    )
    return TABLE_COLUMNS.get(key)


def test_every_table_has_documented_columns(outputs):
    assert reported_tables(outputs)
    for path in reported_tables(outputs) + [path for path in outputs if is_fold(path)]:
        columns = documented_columns(path)
        assert columns is not None, f"{path.name} has no documented columns in TABLE_COLUMNS"
        table = pd.read_csv(path)
        assert set(columns) <= set(table.columns), (path, table.columns)
        assert len(table) > 0, path


def columns_in_the_docs() -> dict[str, set]:
    """docs/outputs.md's Columns table: each table it names -> the columns it documents there."""
    documented, tables = {}, []
    section = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8").split("## Columns", 1)[1]
    for line in section.splitlines():
        cells = line.split(" | ")
        if not line.startswith("| ") or len(cells) < 3 or cells[0].startswith("| table"):
            continue
        tables = re.findall(r"`([^`]+)`", cells[0]) or tables
        for table in tables:
            documented.setdefault(table, set()).update(re.findall(r"`([^`]+)`", cells[1]))
    return documented


def test_every_column_is_documented_in_the_outputs_page(workdir, outputs):
    """docs/outputs.md names every column of every table the run writes (a model's name as M)."""
    documented = columns_in_the_docs()
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    named = {f"{name}_mean" for name in [*config["models"], *config.get("formulas", {})]}
    missing = []
    for path in reported_tables(outputs) + [path for path in outputs if is_fold(path)]:
        key = "leave_one_site_out/" if is_fold(path) else str(path.relative_to(path.parents[1]))
        key = key if key.startswith(("tables/", "leave_one_site_out/")) else path.name
        columns = documented.get(key, set())
        missing += [
            f"{key}: {column}"
            for column in pd.read_csv(path, nrows=0).columns
            if column not in columns and not (column in named and "M_mean" in columns)
        ]
    assert not sorted(set(missing)), sorted(set(missing))


@pytest.mark.parametrize("selection", SELECTIONS)
def test_variance_decomposition(workdir, selection):
    base = workdir / "results" / selection
    variance = pd.read_csv(base / "tables" / "variance_decomposition.csv").set_index("quantity")
    assert 0 <= variance.loc["icc", "mean"] <= 1
    assert variance.loc["icc", "sd"] > 0, "ICC must be summarised as a distribution"


def test_figures_decode(outputs):
    figures = [path for path in outputs if path.suffix == ".png"]
    assert len(figures) > 20
    for path in figures:
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 100 and image.shape[1] > 100, path


def test_report_contains_every_figure_and_table(workdir, outputs):
    """Every figure and table, byte for byte, is inside the report archive."""
    with zipfile.ZipFile(workdir / "results" / "report.zip") as report:
        inside = {report.read(name) for name in report.namelist() if name.endswith((".png", ".csv"))}
    expected = [path for path in outputs if path.suffix == ".png"] + reported_tables(outputs)
    missing = [str(path.relative_to(workdir)) for path in expected if path.read_bytes() not in inside]
    assert not missing, missing


def test_every_artifact_records_the_workflow_version(workdir):
    """The version in pyproject.toml is in every NetCDF file and on the report's front page."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    files = sorted((workdir / "results").rglob("*.nc"))
    assert files
    for path in files:
        with xr.open_datatree(path) as tree:
            assert json.loads(tree.attrs["versions"])["workflow"] == version, path
    line = (workdir / "results" / "findings.txt").read_text().splitlines()[-1]
    assert line.startswith(f"Produced by hierarchical-models-workflow {version} (python "), line
    with zipfile.ZipFile(workdir / "results" / "report.zip") as report:
        pages = [report.read(name).decode() for name in report.namelist() if name.endswith(".html")]
    assert any(f"hierarchical-models-workflow {version}" in page for page in pages)


def test_artifacts_hold_no_absolute_path_of_this_machine(workdir):
    private = [str(workdir), str(ROOT), str(DATA.parent), os.path.expanduser("~")]
    for path in (workdir / "results").rglob("*"):
        if path.suffix in {".nc", ".csv", ".png"}:
            content = path.read_bytes()
            for prefix in private:
                assert prefix.encode() not in content, (path, prefix)


def test_every_step_log_ends_with_its_peak_memory(workdir):
    """Each step's log ends with its process's peak memory, which sizes cluster requests."""
    logs = sorted((workdir / "logs").rglob("*.log"))
    assert len(logs) > 20
    for path in logs:
        assert (io.logged_peak_memory(path) or 0) > 50, (path, path.read_text().splitlines()[-1:])


def test_lint_passes(test_config, tmp_path):
    result = run_snakemake(tmp_path, test_config, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_second_run_gives_byte_identical_artifacts(workdir, outputs, tmp_path):
    """Same config and seed, another folder and process: every artifact, figures included, is the same
    bytes (no timestamps or timings in any file, graphs in a fixed order)."""
    run_snakemake(tmp_path, workdir / "config.yaml", "--cores", "2", check=True)
    differ = [
        str(p.relative_to(workdir))
        for p in outputs
        if p.read_bytes() != (tmp_path / p.relative_to(workdir)).read_bytes()
    ]
    assert not differ, differ


@pytest.mark.parametrize("selection", SELECTIONS)
def test_every_site_is_left_out_once_per_predicting_model(workdir, selection):
    """Complete and partial pooling, and the formulas whose new site's rows have a joint density (one
    site intercept): partial_pooling_bambi (Normal; partial pooling itself, so scored by its fits) and
    robust_age (Student t, fitted with bambi, scored on the rows with an age, so compared on fewer rows)."""
    base = workdir / "results" / selection
    folds = pd.read_csv(base / "tables" / "leave_one_site_out.csv", dtype={"site": str})
    sizes = pd.read_csv(base / "data.csv", dtype={"Site": str})["Site"].value_counts()
    predicting = ["complete_pooling", "partial_pooling", "partial_pooling_bambi", "robust_age"]
    assert sorted(zip(folds["site"], folds["model"])) == sorted(
        (s, m) for s in SELECTIONS[selection] for m in predicting
    )
    all_rows = folds["model"] != "robust_age"
    assert (folds["n"][all_rows].to_numpy() == sizes[folds["site"][all_rows]].to_numpy()).all()
    assert (folds["n"][~all_rows].to_numpy() <= sizes[folds["site"][~all_rows]].to_numpy()).all()
    assert folds["lpd"].lt(0).all() and folds["lpd_mcse"].gt(0).all()
    # partial_pooling_bambi is partial pooling (priors: partial_pooling): that model's fits score it
    scored_by = dict(zip(folds["model"], folds["scored_by"]))
    assert scored_by == {name: name for name in predicting} | {"partial_pooling_bambi": "partial_pooling"}
    model, formula = (folds[folds["model"] == name].set_index("site").drop(columns="model") for name in predicting[1:3])
    pd.testing.assert_frame_equal(formula, model)
    comparison = pd.read_csv(base / "tables" / "leave_one_site_out_comparison.csv")
    assert sorted(comparison["model"]) == predicting
    comparable = comparison[comparison["rows"] == comparison["rows"].max()]
    assert comparison["elpd_logo"].iloc[0] == comparable["elpd_logo"].max()
    assert comparison["elpd_logo"].sum() == pytest.approx(folds["lpd"].sum())
