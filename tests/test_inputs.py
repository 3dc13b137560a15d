"""Data the workflow reads as a user means it (group codes, unicode names), the checks in-process, and
the download of a missing data file; the table of refused and accepted inputs is in test_refusals.py."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from hbm.config import check_config, check_schema, missing_priors, resolve_references, scale_priors
from hbm.data import (
    InputError,
    check_config_against_data,
    read_table,
    resolve_selection,
    sha256_normalised,
    subset,
)
from helpers import FIRST5, changed, run_snakemake

SCHEMA = "workflow/schemas/config.schema.yaml"
PUBLISHED_SHA256 = "5929ec6a2019254e28ba2e706e33ab7565da6a25202f50a1a983d427539b1b5c"  # ../shared/data/README.md


def small_csv(path, rows):
    pd.DataFrame(rows, columns=["scontrol", "Site", "age"]).to_csv(path, index=False)
    return str(path)


def expect_refusal(tmp_path, config, *fragments):
    result = run_snakemake(tmp_path / "run", config, "--cores", "1", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output[-3000:]}"
    assert not (tmp_path / "run" / "results").exists(), "results/ was written"
    return output


@pytest.mark.slow
@pytest.mark.parametrize("as_numbers", [True, False])
def test_numeric_group_codes_are_labels(tmp_path, test_config, as_numbers):
    """County codes such as 27053 (and zero-padded ones such as 011) are group labels, whether the
    config lists them as numbers or as text; a padded code is never read as another number."""
    rng = np.random.default_rng(1)
    codes = ["27053", "011", "27137", "11"]
    rows = [[round(40 + 6 * rng.standard_normal()), code, i] for i, code in enumerate(codes * 10)]
    data = small_csv(tmp_path / "d.csv", rows)
    listed = [27053, "011", 27137] if as_numbers else ["27053", "011", "27137"]
    config = test_config | {
        "data": {"path": data},
        "selections": {"codes": listed},
        "new_sites": [11 if as_numbers else "11"],
    }
    targets = ["results/codes/tables/shrinkage.csv", "results/codes/partial_pooling/new_site_11.nc"]
    result = run_snakemake(tmp_path / "run", config, "--cores", "2", *targets, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    shrinkage = pd.read_csv(tmp_path / "run" / targets[0], dtype={"site": str})
    assert shrinkage["site"].tolist() == ["27053", "011", "27137"]
    assert shrinkage["n"].tolist() == [10, 10, 10]


def test_missing_data_that_cannot_be_downloaded(tmp_path, test_config):
    config = test_config | {"data": {"path": "resources/data.csv", "url": "http://127.0.0.1:9/data.csv"}}
    output = expect_refusal(tmp_path, config, "could not be downloaded from http://127.0.0.1:9/data.csv")
    assert not (tmp_path / "run" / "resources" / "data.csv").exists()
    assert "Traceback" not in output


@pytest.mark.slow
def test_unicode_site_names_work(tmp_path, test_config):
    rng = np.random.default_rng(0)
    sites = ["Zürich", "São Paulo", "Kraków", "東京"]
    rows = [[round(40 + 6 * rng.standard_normal()), site, i] for i, site in enumerate(sites * 12)]
    data = small_csv(tmp_path / "d.csv", rows)
    config = test_config | {"data": {"path": data}, "selections": {"größe": sites[1:]}, "new_sites": ["Zürich"]}
    targets = ["results/größe/partial_pooling/new_site_Zürich.nc", "results/größe/tables/shrinkage.csv"]
    result = run_snakemake(tmp_path / "run", config, "--cores", "2", *targets, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    shrinkage = pd.read_csv(tmp_path / "run" / targets[1])
    assert shrinkage["site"].tolist() == sites[1:]
    with xr.open_datatree(tmp_path / "run" / targets[0]) as tree:
        assert tree.attrs["new_site"] == "Zürich"


def test_checks_accept_the_default_config(default_config, data_path):
    check_schema(default_config, SCHEMA)
    check_config(default_config)
    resolved = check_config_against_data(default_config, read_table(data_path, "scontrol", "Site"), "data")
    assert resolved["first5"] == FIRST5
    assert "Zurich" not in resolved["all"] and len(resolved["all"]) == 14


def test_schema_error_names_the_key(default_config):
    with pytest.raises(InputError, match=r"config key 'sampling.target_accept'"):
        check_schema(changed(default_config, "sampling", "target_accept", 1.5), SCHEMA)


def test_subset_keeps_selection_order_and_counts_dropped_rows(tmp_path):
    data = small_csv(tmp_path / "d.csv", [[40, "B", 1], [None, "A", 2], [38, "A", 3], [41, "B", 4], [39, "C", 1]])
    frame = read_table(data, "scontrol", "Site")
    rows, dropped = subset(frame, "scontrol", "Site", ["B", "A"])
    assert rows["Site"].tolist() == ["B", "B", "A"]
    assert rows["obs_id"].tolist() == [0, 3, 2]
    assert dropped == 1


def test_shared_data_matches_its_published_checksum(data_path):
    assert sha256_normalised(data_path) == PUBLISHED_SHA256


def test_checksum_ignores_line_endings(tmp_path):
    (tmp_path / "lf.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "crlf.csv").write_bytes(b"a,b\r\n1,2\r\n")
    assert sha256_normalised(tmp_path / "lf.csv") == sha256_normalised(tmp_path / "crlf.csv")


@pytest.fixture
def served_data(data_path):
    """The data file served over HTTP on the loopback interface."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/{data_path.name}"
    server.shutdown()


def test_missing_data_is_downloaded_and_checked(tmp_path, test_config, served_data):
    config = test_config | {"data": {"path": "resources/data.csv", "url": served_data, "sha256": PUBLISHED_SHA256}}
    result = run_snakemake(tmp_path / "run", config, "--cores", "1", "results/first5/data.csv", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sha256_normalised(tmp_path / "run" / "resources" / "data.csv") == PUBLISHED_SHA256
    assert len(pd.read_csv(tmp_path / "run" / "results" / "first5" / "data.csv")) == 6 + 181 + 106 + 174 + 85


def test_download_with_another_checksum_is_refused(tmp_path, test_config, served_data):
    config = test_config | {"data": {"path": "resources/data.csv", "url": served_data, "sha256": "0" * 64}}
    expect_refusal(tmp_path, config, "has sha256 " + PUBLISHED_SHA256, "expected " + "0" * 64)
    assert not (tmp_path / "run" / "resources" / "data.csv").exists()


def test_formulas_are_checked_against_downloaded_data(tmp_path, test_config, served_data):
    """With the data absent at the start, a formula naming a missing column is refused by its fit job
    with the message of the check before any job, and nothing of it is written."""
    config = test_config | {
        "data": {"path": "resources/data.csv", "url": served_data, "sha256": PUBLISHED_SHA256},
        "formulas": {"bad": {"formula": "scontrol ~ 1 + nosuchcolumn + (1|Site)", "priors": "default"}},
    }
    target = "results/first5/formulas/bad/posterior.nc"
    result = run_snakemake(tmp_path / "run", config, "--cores", "1", target, timeout=300)
    assert result.returncode != 0
    log = (tmp_path / "run" / "logs" / "fit_formula" / "first5" / "bad.log").read_text()
    assert "config key 'formulas.bad'" in log and "nosuchcolumn" in log, log
    assert not (tmp_path / "run" / "results" / "first5" / "formulas" / "bad").exists()


def test_selection_rules_choose_the_groups_they_name():
    counts = pd.Series({"A": 5, "B": 1, "C": 3, "D": 0, "Z": 9})  # rows with an outcome per group
    assert resolve_selection("all", counts, ["Z"], "s") == ["A", "B", "C", "D"]
    assert resolve_selection({"all_except": ["C"]}, counts, ["Z"], "s") == ["A", "B"]
    assert resolve_selection({"min_rows": 3}, counts, ["Z"], "s") == ["A", "C"]
    drawn = [resolve_selection({"sample": 2, "seed": seed}, counts, [], "s") for seed in range(20)]
    assert all(len(set(sites)) == 2 and sites == sorted(sites) for sites in drawn)
    assert len({tuple(sites) for sites in drawn}) > 1  # other seeds, other groups
    assert drawn[3] == resolve_selection({"sample": 2, "seed": 3}, counts, [], "s")  # same seed, same groups
    with pytest.raises(InputError, match="the rule leaves no group"):
        resolve_selection({"min_rows": 10}, counts, ["Z"], "s")


def test_references_name_the_configured_columns():
    config = {"outcome": "y", "group": "school", "formulas": {"f": {"formula": "{outcome} ~ 1 + (1|{group})"}}}
    resolve_references(config)
    assert config["formulas"]["f"]["formula"] == "y ~ 1 + (1|school)"
    with pytest.raises(InputError, match="formulas.g"):
        resolve_references(config | {"formulas": {"g": {"formula": "{y} ~ 1"}}})


def test_left_out_priors_are_scaled_to_the_outcome():
    config = {"models": {"complete_pooling": {}, "partial_pooling": {"priors": {"hyper_mu": {"dist": "Normal"}}}}}
    missing = missing_priors(config)
    scales = ["within_variability", "between_variability"]
    assert missing == {"complete_pooling": ["mu", "sigma"], "partial_pooling": scales}
    scale_priors(config, missing, mean=1234.5678, sd=98.7654)
    assert config["models"]["complete_pooling"]["priors"] == {
        "mu": {"dist": "Normal", "mu": 1230.0, "sigma": 247.0},
        "sigma": {"dist": "Exponential", "lam": 0.0101},
    }
    assert config["models"]["partial_pooling"]["priors"]["hyper_mu"] == {"dist": "Normal"}  # given: kept
    assert config["models"]["partial_pooling"]["priors"]["between_variability"]["lam"] == 0.0101
