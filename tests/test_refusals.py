"""Every odd or bad input, each through the real `snakemake` command: a refused case exits non-zero
before any job, writes no results/ and names the culprit; an accepted case runs to the end. The cases
are listed in config/README.md ("What the workflow refuses, and why")."""

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from helpers import FIRST5, ROOT, changed, load_config, run_snakemake

GOOD_ROWS = [
    [40, "A"], [42, "A"], [39, "A"], [38, "B"], [41, "B"], [44, "B"], [45, "C"], [47, "C"], [41, "Z"], [43, "Z"],
]  # fmt: skip


def csv(path: Path, rows, columns=("scontrol", "Site")) -> str:
    """A comma-separated file of `rows` under `columns`."""
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return str(path)


def text(path: Path, content: str | bytes) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def small(config: dict, data: str, sites=("A", "B"), new_sites=("Z",)) -> dict:
    """`config` on a small data file: one selection `s` of `sites`, `new_sites`, no formulas (the test
    config's use columns the file does not have; formulas are tested in tests/test_formulas.py)."""
    return (
        config
        | {"data": {"path": data}, "selections": {"s": list(sites)}, "new_sites": list(new_sites)}
        | {"formulas": {}}
    )


def with_column(workdir: Path, config: dict, x: list, formula: str) -> dict:
    """`small` with a column `x` beside GOOD_ROWS (sites A and B first, the selection) and formula `f`."""
    rows = [[y, site, value] for (y, site), value in zip(GOOD_ROWS, x)]
    return small(config, csv(workdir / "d.csv", rows, ("scontrol", "Site", "x"))) | {
        "formulas": {"f": {"formula": formula}}
    }


def yaml_text(workdir: Path, body: str) -> Path:
    """A config file written as text, for what a dict cannot express (duplicate keys, YAML's booleans)."""
    path = workdir / "typed.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def base_yaml(config: dict) -> str:
    """The test config as YAML text, without its selections and new sites (the cases add their own)."""
    import yaml

    rest = {key: value for key, value in config.items() if key not in ("selections", "new_sites")}
    return yaml.safe_dump(rest, sort_keys=False)


@dataclass
class Case:
    setup: object  # (workdir, test config) -> config dict or config file path
    fragments: list = field(default_factory=list)


def at(*change):
    """A case that changes one key of the test config."""
    return lambda workdir, config: changed(config, *change)


REFUSED = {
    # --- selections, sites and names
    "site not in data": Case(at("selections", "first5", [*FIRST5[:4], "Atlantis"]), ["selections.first5", "'Atlantis'", "known sites: 'Bamberg'"]),
    "empty selection": Case(at("selections", "first5", []), ["selections.first5", "empty"]),
    "no selections": Case(at("selections", {}), ["selections", "should be non-empty"]),
    "selection neither list nor all": Case(at("selections", "first5", "some"), ["selections.first5", "'some'"]),
    "selection rule leaves no group": Case(at("selections", "first5", {"min_rows": 100000}), ["selections.first5", "the rule leaves no group"]),
    "selection rule samples too many": Case(at("selections", "first5", {"sample": 100}), ["selections.first5.sample", "100 groups asked for"]),
    "selection rule leaves out an unknown site": Case(at("selections", "first5", {"all_except": ["Atlantis"]}), ["selections.first5.all_except", "'Atlantis'"]),
    "selection rule seed without sample": Case(at("selections", "first5", {"seed": 3}), ["selections.first5.seed", "'sample'"]),
    "selection rule with an unknown key": Case(at("selections", "first5", {"min_row": 3}), ["selections.first5"]),
    "selection named like a top-level output": Case(at("selections", "findings.txt", FIRST5), ["'findings.txt'", "a file the workflow writes in results/"]),
    "site that differs only in case": Case(at("selections", "first5", [*FIRST5[:4], "oslo"]), ["selections.first5", "'oslo'", "did you mean 'Oslo'?"]),
    "leave one site out on two sites": Case(lambda w, c: changed(small(c, csv(w / "d.csv", GOOD_ROWS)), "criticism", "leave_one_site_out", True), ["selections.s", "with two sites", "leave_one_site_out: false"]),
    "covariate with decimal commas": Case(lambda w, c: small(c, csv(w / "d.csv", [[y, s, f"1,{i}5"] for i, (y, s) in enumerate(GOOD_ROWS)], ("scontrol", "Site", "height"))) | {"formulas": {"f": {"formula": "scontrol ~ 1 + height"}}}, ["formulas.f", "'height'", "decimal commas", "'1,05' in row 2", "decimal points"]),
    "outcome near 1e300": Case(lambda w, c: small(c, csv(w / "d.csv", [[y * 1e300, s] for y, s in GOOD_ROWS])), ["outcome column 'scontrol'", "values as large as 4.7e+301", "divide it by 1e+301"]),
    "outcome near 1e-300": Case(lambda w, c: small(c, csv(w / "d.csv", [[y * 1e-300, s] for y, s in GOOD_ROWS])), ["outcome column 'scontrol'", "a standard deviation of", "multiply it by 1e+300"]),
    "prior sd of 1e300": Case(at("models", "complete_pooling", "priors", "mu", {"dist": "Normal", "mu": 0, "sigma": 1e300}), ["models.complete_pooling.priors.mu.sigma", "1e+300", "rescale"]),
    "formula term not finite on the selection": Case(lambda w, c: with_column(w, c, [-1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "scontrol ~ 1 + np.log(x)"), ["formulas.f", "selection 's'", "np.log(x) is not finite on 1 of its 6 rows", "row 2"]),
    "formula scaling a constant column": Case(lambda w, c: with_column(w, c, [3] * 10, "scontrol ~ 1 + scale(x)"), ["formulas.f", "scale(x) is not finite"]),
    "formula covariate constant in the selection": Case(lambda w, c: with_column(w, c, [1, 1, 1, 1, 1, 1, 2, 3, 4, 5], "scontrol ~ 1 + x"), ["formulas.f", "selection 's'", "x is a combination of the others"]),
    "formula interaction with an empty cell": Case(lambda w, c: with_column(w, c, list("uuuuvvuvuv"), "scontrol ~ 1 + x * Site"), ["formulas.f", "linearly dependent"]),
    "formula columns missing on the selection": Case(lambda w, c: with_column(w, c, [None] * 6 + [1, 2, 3, 4], "scontrol ~ 1 + x"), ["formulas.f", "selection 's'", "no row of the selection has a value"]),
    "formula transforming the outcome": Case(lambda w, c: with_column(w, c, list(range(10)), "np.log(scontrol) ~ 1 + x"), ["formulas.f", "transforms the outcome", "np.log(scontrol)"]),
    "separator and decimal mark the same": Case(lambda w, c: changed(small(c, csv(w / "d.csv", GOOD_ROWS)), "data", "decimal", ","), ["data.sep", "data.decimal", "','"]),
    "damaged compressed file": Case(lambda w, c: small(c, text(w / "d.csv.gz", b"\x1f\x8b\x08\x00 not really gzip")), ["d.csv.gz", "not a readable .gz file"]),
    "site listed twice": Case(at("selections", "first5", [*FIRST5, "Oslo"]), ["selections.first5", "'Oslo' is listed twice"]),
    "new site inside its selection": Case(lambda w, c: changed(changed(c, "selections", {"first5": FIRST5}), "new_sites", ["Oslo"]), ["selections.first5", "'Oslo' is also a new site"]),
    "new sites without a model that predicts them": Case(lambda w, c: changed(changed(c, "models", {"complete_pooling": c["models"]["complete_pooling"]}), "formulas", {}), ["new_sites", "no configured model predicts"]),
    "new site listed twice": Case(at("new_sites", ["Zurich", "Zurich"]), ["new_sites", "non-unique"]),
    "new site not in data": Case(at("new_sites", ["Atlantis"]), ["new_sites", "'Atlantis'", "known sites"]),
    "one site for partial pooling": Case(at("selections", "first5", ["Oslo"]), ["selections.first5", "at least two sites"]),
    "selection name escapes results": Case(at("selections", "../x", FIRST5), ["'../x'", "cannot name a file or folder of its own inside results/"]),
    "absolute selection name": Case(at("selections", "/abs", FIRST5), ["'/abs'", "cannot name a file or folder of its own inside results/"]),
    "selection name with a backslash": Case(at("selections", "a\\b", FIRST5), ["'a\\\\b'", "cannot name a file or folder of its own inside results/"]),
    "selection name with braces": Case(at("selections", "x{y}", FIRST5), ["'x{y}'", "{ or }"]),
    "selection name too long": Case(at("selections", "s" * 150, FIRST5), ["selections", "longer than 100"]),
    "new site escapes results": Case(at("new_sites", ["../Zurich"]), ["new_sites", "cannot name a file or folder of its own inside results/"]),
    "new site with braces": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [40, "Z{1}"], [41, "Z{1}"]]), new_sites=["Z{1}"]), ["new_sites", "'Z{1}'", "{ or }"]),
    "YAML boolean as a site": Case(lambda w, c: yaml_text(w, base_yaml(c) + "selections:\n  s: [Oslo, NO]\n"), ["selections.s", "False", "quote it"]),
    "YAML boolean as the outcome": Case(lambda w, c: yaml_text(w, base_yaml(changed(c, "outcome", ...)) + "outcome: yes\nselections:\n  s: [Oslo, METU]\n"), ["outcome", "True", "quote it"]),
    "label with a leading zero unquoted": Case(lambda w, c: yaml_text(w, base_yaml(c) + "selections:\n  s: [Oslo, 010]\n"), ["typed.yaml", "010", "'selections.s'", "the number 8", "quote it ('010')"]),
    "label written as a decimal unquoted": Case(lambda w, c: yaml_text(w, base_yaml(c) + "selections:\n  s: [Oslo, METU]\nnew_sites: [1.10]\n"), ["typed.yaml", "'new_sites'", "the number 1.1,", "quote it ('1.10')"]),
    "YAML key given twice": Case(lambda w, c: yaml_text(w, base_yaml(c) + "selections:\n  s: [Oslo, METU]\nselections:\n  t: [Oslo, Kassel]\n"), ["'selections'", "given twice", "typed.yaml"]),
    "config not a mapping": Case(lambda w, c: yaml_text(w, "- first5\n- all\n"), ["Config file must be given as JSON or YAML with keys at top level"]),
    # --- columns
    "outcome column missing": Case(at("outcome", "selfcontrol"), ["config key 'outcome'", "'selfcontrol'"]),
    "group column missing": Case(at("group", "Place"), ["config key 'group'", "'Place'"]),
    "outcome column twice": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol,Site,scontrol\n40,A,1\n42,A,2\n38,B,3\n41,B,4\n41,Z,5\n"), sites=["A", "B"]), ["'scontrol'", "appears 2 times"]),
    "group column twice": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol,Site,Site\n40,A,B\n42,A,B\n38,B,A\n41,B,A\n41,Z,Z\n")), ["'Site'", "appears 2 times"]),
    "outcome and group the same column": Case(lambda w, c: changed(c, "group", "scontrol"), ["'outcome' and 'group'", "same column"]),
    # --- the data file
    "missing data, no url": Case(at("data", {"path": "nowhere/data.csv"}), ["data.path", "nowhere/data.csv", "does not exist"]),
    "data path is a directory": Case(lambda w, c: changed(c, "data", {"path": str(w)}), ["data.path", "is a directory"]),
    "empty file": Case(lambda w, c: small(c, text(w / "d.csv", "")), ["d.csv", "is empty"]),
    "header only": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol,Site\n")), ["d.csv", "has a header but no rows"]),
    "semicolon-delimited": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol;Site\n40;A\n42;A\n38;B\n41;B\n41;Z\n")), ["d.csv", "';'", "set data.sep: ';'"]),
    "tab-delimited": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol\tSite\n40\tA\n42\tA\n38\tB\n41\tB\n41\tZ\n")), ["d.csv", "tab", "set data.sep: '\\t'"]),
    "ragged rows": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol,Site\n40,A\n42,A,7,8\n38,B\n41,B\n41,Z\n")), ["d.csv", "line 3", "4 fields"]),
    "binary file": Case(lambda w, c: small(c, text(w / "d.csv", bytes(range(256)) * 4)), ["d.csv", "is a binary file"]),
    "not UTF-8": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol,Site\n40,Z\xfcrich\n".encode("latin-1") + b"42,A\n38,B\n41,B\n")), ["d.csv", "UTF-8"]),
    # --- values
    "non-numeric outcome": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, ["high", "A"], ["n/a?", "B"]])), ["outcome column 'scontrol'", "row 12 ('high')", "row 13 ('n/a?')"]),
    "infinite outcome": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, ["inf", "A"], ["-Infinity", "B"]])), ["infinite values", "row 12 ('inf')"]),
    "empty group label": Case(lambda w, c: small(c, text(w / "d.csv", "scontrol,Site\n40,A\n42,\n38,B\n41,B\n41,Z\n")), ["group column 'Site'", "empty", "row 3"]),
    "labels that differ only in Unicode form": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [40, "Z\u00fcrich"], [41, "Zu\u0308rich"]])), ["'Z\\xfcrich'", "'Zu\\u0308rich'", "differ only in their Unicode form"]),
    "labels that differ only in case": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [40, "Oslo"], [41, "OSLO"]])), ["'Oslo'", "'OSLO'", "differ only in upper and lower case"]),
    "site label with a slash, left out in a fold": Case(lambda w, c: changed(small(c, csv(w / "d.csv", [[y, "A/1" if s == "A" else s] for y, s in GOOD_ROWS]), sites=["A/1", "B"]), "criticism", "leave_one_site_out", True), ["'A/1'", "left out in a fold of its own", "cannot name a file or folder of its own inside results/"]),
    "labels that differ only in spaces": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [40, "A "], [41, "A "]]), sites=["A", "B"]), ["'A'", "'A '", "differ only in spaces"]),
    "site without outcomes": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [None, "D"]]), sites=["A", "B", "D"]), ["selections.s", "'D' has no rows left"]),
    "new site without outcomes": Case(lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [None, "Y"]]), new_sites=["Y"]), ["new_sites", "'Y' has no rows"]),
    "constant outcome": Case(lambda w, c: small(c, csv(w / "d.csv", [[40, s] for s in "AAABBBZZ"])), ["selections.s", "constant", "40"]),
    "constant within every site": Case(lambda w, c: small(c, csv(w / "d.csv", [[40, "A"], [40, "A"], [44, "B"], [44, "B"], [41, "Z"], [43, "Z"]])), ["selections.s", "within every site"]),
    # --- sampling and gate settings
    "zero draws": Case(at("sampling", "draws", 0), ["sampling.draws", "less than the minimum"]),
    "too few draws for diagnostics": Case(at("sampling", "draws", 5), ["sampling.draws", "less than the minimum of 20"]),
    "draws written as 200.0": Case(at("sampling", "draws", 200.0), ["sampling.draws", "200.0", "whole number"]),
    "negative tune": Case(at("sampling", "tune", -5), ["sampling.tune", "-5"]),
    "zero chains": Case(at("sampling", "chains", 0), ["sampling.chains", "0"]),
    "one chain": Case(at("sampling", "chains", 1), ["sampling.chains", "less than the minimum of 2", "r_hat"]),
    "seed written as 5.0": Case(at("sampling", "seed", 5.0), ["sampling.seed", "5.0", "whole number"]),
    "seed too large": Case(at("sampling", "seed", 2**70), ["sampling.seed", "maximum"]),
    "negative seed": Case(at("sampling", "seed", -1), ["sampling.seed", "-1"]),
    "boolean seed": Case(at("sampling", "seed", True), ["sampling.seed", "True"]),
    "target_accept of 1": Case(at("sampling", "target_accept", 1.0), ["sampling.target_accept", "1.0"]),
    "unknown sampler": Case(at("sampling", "sampler", "stan"), ["sampling.sampler", "'stan'"]),
    "unknown backend": Case(at("sampling", "backend", "jax"), ["sampling.backend", "'jax'"]),
    "model override with one chain": Case(at("models", "no_pooling", "sampling", {"chains": 1}), ["models.no_pooling.sampling.chains", "minimum of 2"]),
    "max_rhat below 1": Case(at("convergence", "max_rhat", 0.9), ["convergence.max_rhat", "0.9"]),
    "negative min_ess": Case(at("convergence", "min_ess", -1), ["convergence.min_ess", "-1"]),
    "unknown on_failure": Case(at("convergence", "on_failure", "ignore"), ["convergence.on_failure", "'ignore'"]),
    # --- models and priors
    "no models": Case(at("models", {}), ["models", "should be non-empty"]),
    "unknown model": Case(at("models", "full_pooling", {"priors": {}}), ["config key 'models.full_pooling' is not a known key"]),
    "non-positive prior scale": Case(at("models", "partial_pooling", "priors", "hyper_mu", {"dist": "Normal", "mu": 40, "sigma": 0}), ["models.partial_pooling.priors.hyper_mu.sigma", "0"]),
    "unknown prior distribution": Case(at("models", "no_pooling", "priors", "sigma", {"dist": "Weibull", "alpha": 2, "beta": 1}), ["models.no_pooling.priors.sigma.dist", "Weibull"]),
    "Uniform prior with lower above upper": Case(at("models", "partial_pooling", "priors", "between_variability", {"dist": "Uniform", "lower": 5, "upper": 2}), ["models.partial_pooling.priors.between_variability", "lower < upper"]),
    "unknown prior parameter": Case(at("models", "no_pooling", "priors", "sigma", {"dist": "Exponential", "lam": 1, "scale": 2}), ["models.no_pooling.priors.sigma.scale", "not a known key"]),
    "location prior on a scale": Case(at("models", "no_pooling", "priors", "sigma", {"dist": "Normal", "mu": 0, "sigma": 1}), ["models.no_pooling.priors.sigma.dist", "Normal"]),
    "unknown parameterization": Case(at("models", "no_pooling", "parameterization", "noncentered"), ["models.no_pooling.parameterization", "'noncentered'"]),
    # --- formulas
    "malformed formula": Case(at("formulas", {"f": {"formula": "scontrol ~ 1 + (1|"}}), ["formulas.f", "malformed formula"]),
    "formula without the outcome": Case(at("formulas", {"f": {"formula": "stress ~ 1"}}), ["formulas.f", "'scontrol ~ ...'"]),
    "formula column missing": Case(at("formulas", {"f": {"formula": "scontrol ~ 1 + wealth"}}), ["formulas.f", "'wealth'", "not in the data"]),
    "formula unknown reference": Case(at("formulas", {"f": {"formula": "{outcom} ~ 1"}}), ["formulas.f", "reference other than {outcome} and {group}"]),
    "formula unknown function": Case(at("formulas", {"f": {"formula": "scontrol ~ 1 + nosuch(stress)"}}), ["formulas.f", "cannot be evaluated"]),
    "formula unknown family": Case(at("formulas", {"f": {"formula": "scontrol ~ 1", "family": "poisson2"}}), ["formulas.f.family", "'poisson2'"]),
    "formula priors of no pooling": Case(at("formulas", {"f": {"formula": "scontrol ~ 0 + C(Site)", "priors": "no_pooling"}}), ["formulas.f", "'no_pooling' cannot be translated"]),
    "formula priors of another formula": Case(at("formulas", {"f": {"formula": "scontrol ~ 1 + (1|Site)", "priors": "complete_pooling"}}), ["formulas.f", "translate only to the formula 'scontrol ~ 1'"]),
    "formula priors with family t": Case(at("formulas", {"f": {"formula": "scontrol ~ 1", "priors": "complete_pooling", "family": "t"}}), ["formulas.f", "family gaussian"]),
    "formula priors of a model not fitted": Case(lambda w, c: changed(changed(c, "models", "complete_pooling", ...), "formulas", {"f": {"formula": "scontrol ~ 1", "priors": "complete_pooling"}}), ["formulas.f", "not in config key 'models'"]),
    "formula named as a model": Case(at("formulas", {"no_pooling": {"formula": "scontrol ~ 1"}}), ["formulas", "'no_pooling' is also a model's name"]),
    "formula column given twice": Case(lambda w, c: changed(small(c, text(w / "d.csv", "age,scontrol,Site,age\n" + "".join(f"1,{y},{s},2\n" for y, s in GOOD_ROWS))), "formulas", {"f": {"formula": "scontrol ~ age"}}), ["formulas.f", "'age' appears 2 times"]),
    "formula name escapes results": Case(at("formulas", {"../f": {"formula": "scontrol ~ 1"}}), ["'../f'", "cannot name a file or folder of its own inside results/"]),
    # --- storage, plots, caches
    "max_values of 1": Case(at("storage", "max_values", 1), ["storage.max_values", "fewer than 100 draws"]),
    "unknown pointwise level": Case(at("storage", "pointwise", "groups"), ["storage.pointwise", "'groups'"]),
    "unknown palette": Case(at("plots", "palette", "rainbow-unicorn"), ["plots.palette", "'rainbow-unicorn'"]),
    "unknown plot style": Case(at("plots", "style", "fancy"), ["plots.style", "'fancy'"]),
    "dpi too small": Case(at("plots", "dpi", 5), ["plots.dpi", "5"]),
    "dpi too large": Case(at("plots", "dpi", 5000), ["plots.dpi", "5000", "gigabytes"]),
    "figsize of three numbers": Case(at("plots", "figsize", [7, 4, 2]), ["plots.figsize", "too long"]),
    "cache_dir is a file": Case(lambda w, c: changed(c, "cache_dir", text(w / "cache.txt", "x")), ["cache_dir", "is a file"]),
    "malformed sha256": Case(lambda w, c: changed(c, "data", {**c["data"], "sha256": "abc"}), ["data.sha256", "'abc'"]),
    "unknown top-level key (typo)": Case(at("selection", {"mine": ["Oslo", "Kassel"]}), ["'selection' is not a known key", "did you mean 'selections'?"]),
    "unknown nested key (typo)": Case(at("sampling", "draw", 10), ["'sampling.draw' is not a known key", "did you mean 'draws'?"]),
}  # fmt: skip


def expect(workdir: Path, config) -> tuple[int, str, bool]:
    result = run_snakemake(workdir, config, "--cores", "1", timeout=300)
    return result.returncode, result.stdout + result.stderr, (workdir / "results").exists()


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every refused case through snakemake, two at a time (each is a parse of the workflow)."""
    base = load_config("tests/config/test.yaml")

    def run(name):
        workdir = tmp_path_factory.mktemp("refused")
        return expect(workdir / "run", REFUSED[name].setup(workdir, base))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(REFUSED, pool.map(run, REFUSED)))


@pytest.mark.parametrize("name", REFUSED)
def test_refused_before_any_job(refusals, name):
    returncode, output, wrote_results = refusals[name]
    assert returncode != 0, output[-3000:]
    assert not wrote_results, "results/ was written"
    assert "Traceback" not in output, output[-3000:]
    for fragment in REFUSED[name].fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output[-3000:]}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file, so no file is unreadable")
def test_unreadable_file_is_refused(tmp_path):
    data = Path(csv(tmp_path / "d.csv", GOOD_ROWS))
    data.chmod(0)
    try:
        returncode, output, wrote = expect(tmp_path / "run", small(load_config("tests/config/test.yaml"), str(data)))
    finally:
        data.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert returncode != 0 and not wrote and "cannot be read" in output and "Traceback" not in output


def light(config: dict) -> dict:
    """`config` made quick to run to the end: short chains, the pytensor backend (no numba compile for new
    data), failures of the gate recorded rather than stopping the run."""
    config = changed(config, "sampling", {**config["sampling"], "draws": 100, "tune": 200, "backend": "pytensor"})
    return changed(config, "convergence", {"min_ess": 10, "on_failure": "warn"})


def selection_rows(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "results" / "s" / "data.csv", dtype={"Site": str}, keep_default_na=False)


def nothing(run: Path) -> None:
    """No check beyond a complete run."""


def dropped_and_logged(run: Path) -> None:
    assert len(selection_rows(run)) == 6
    assert "dropped 2 rows with a missing scontrol" in (run / "logs" / "subset" / "s.log").read_text()


def no_new_site(run: Path) -> None:
    assert not [path for path in (run / "results").rglob("new_site_*") if path.suffix in (".nc", ".png")]
    assert len(pd.read_csv(run / "results" / "s" / "tables" / "new_site_coverage.csv")) == 0


def site_na_kept(run: Path) -> None:
    assert selection_rows(run)["Site"].tolist()[:3] == ["NA"] * 3


def obs_id_is_the_data_row(run: Path) -> None:
    assert selection_rows(run)["obs_id"].tolist() == [0, 1, 2, 3, 4, 5]


def codes_kept(run: Path) -> None:
    assert sorted(set(selection_rows(run)["Site"])) == ["011", "11"]


def gzipped(path: Path, rows) -> str:
    import gzip

    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("scontrol,Site\n" + "".join(f"{y},{site}\n" for y, site in rows))
    return str(path)


def european(workdir: Path, config: dict) -> dict:
    """GOOD_ROWS written as a spreadsheet in many locales saves them: ';' between columns, decimal
    commas, here with a covariate used by a formula."""
    lines = [f"{y + 0.25:.2f};{site};{1 + i / 10:.1f}".replace(".", ",") for i, (y, site) in enumerate(GOOD_ROWS)]
    data = text(workdir / "d.csv", "scontrol;Site;height\n" + "\n".join(lines) + "\n")
    config = small(config, data) | {"formulas": {"f": {"formula": "scontrol ~ 1 + height"}}}
    return changed(changed(config, "data", "sep", ";"), "data", "decimal", ",")


def european_read(run: Path) -> None:
    assert selection_rows(run)["scontrol"].tolist() == [y + 0.25 for y, site in GOOD_ROWS if site in ("A", "B")]
    tree = xr.load_datatree(run / "results" / "s" / "formulas" / "f" / "posterior.nc")
    assert "height" in tree["posterior"]  # a number, not a factor of one level per value


LOWER_CASE_PRIORS = {
    "hyper_mu": {"dist": "cauchy", "alpha": 40, "beta": 10},
    "within_variability": {"dist": "halfstudentt", "nu": 3, "sigma": 5},
    "between_variability": {"dist": "GAMMA", "alpha": 2, "beta": 0.5},
}


def families_recorded(run: Path) -> None:
    """The families take PyMC's spelling, and the fit used them."""
    tree = xr.load_datatree(run / "results" / "s" / "partial_pooling" / "posterior.nc")
    recorded = json.loads(tree.attrs["settings"])["models"]["partial_pooling"]["priors"]
    assert {name: prior["dist"] for name, prior in recorded.items()} == {
        "hyper_mu": "Cauchy",
        "within_variability": "HalfStudentT",
        "between_variability": "Gamma",
    }


def scaled_priors_recorded(run: Path) -> None:
    """The priors left out are Normal(mean, 2.5 sd) and Exponential(1 / sd) of the whole file's outcome."""
    outcome = pd.read_csv(run.parent / "d.csv")["scontrol"]
    mean, sd = float(f"{outcome.mean():.3g}"), float(f"{outcome.std():.3g}")
    expected = {
        "complete_pooling": {"mu": {"dist": "Normal", "mu": mean, "sigma": float(f"{2.5 * sd:.3g}")}},
        "partial_pooling": {
            "hyper_mu": {"dist": "Normal", "mu": 40, "sigma": 20},  # given in the config
            "within_variability": {"dist": "Exponential", "lam": float(f"{1 / sd:.3g}")},
        },
    }
    for model, priors in expected.items():
        with xr.open_datatree(run / "results" / "s" / model / "posterior.nc") as tree:
            recorded = json.loads(tree.attrs["settings"])["models"][model]["priors"]
        for parameter, prior in priors.items():
            assert recorded[parameter] == prior, (model, parameter, recorded[parameter])


def rule_selected(run: Path) -> None:
    assert list(dict.fromkeys(selection_rows(run)["Site"])) == ["A", "B"]  # C left out, D has one row, Z is new


def referenced_formula_fitted(run: Path) -> None:
    with xr.open_datatree(run / "results" / "s" / "formulas" / "pp" / "posterior.nc") as tree:
        assert json.loads(tree.attrs["settings"])["formula"]["formula"] == "y ~ 1 + (1|g)"


def priors_left_out(config: dict) -> dict:
    """complete pooling and partial pooling's within-site sd without priors, hyper_mu's given."""
    models = {
        "complete_pooling": {},
        "partial_pooling": {"priors": {"hyper_mu": {"dist": "Normal", "mu": 40, "sigma": 20}}},
    }
    return changed(config, "models", models)


def other_columns(config: dict, data: str) -> dict:
    """`config` on columns y and g, with a formula that names them by reference."""
    formula = {"pp": {"formula": "{outcome} ~ 1 + (1|{group})", "priors": "partial_pooling"}}
    return small(config, data) | {"outcome": "y", "group": "g", "formulas": formula}


ACCEPTED = {
    "CRLF line endings": (lambda w, c: small(c, text(w / "d.csv", "scontrol,Site\r\n" + "".join(f"{y},{s}\r\n" for y, s in GOOD_ROWS))), nothing),
    "byte-order mark": (lambda w, c: small(c, text(w / "d.csv", "\ufeffscontrol,Site\n" + "".join(f"{y},{s}\n" for y, s in GOOD_ROWS))), nothing),
    "missing outcomes (NA and empty)": (lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, ["NA", "A"], [None, "B"]])), dropped_and_logged),
    "a site named NA": (lambda w, c: small(c, csv(w / "d.csv", [[y, "NA" if s == "A" else s] for y, s in GOOD_ROWS]), sites=["NA", "B"]), site_na_kept),
    "an obs_id column in the data": (lambda w, c: small(c, csv(w / "d.csv", [[y, s, 100 + i] for i, (y, s) in enumerate(GOOD_ROWS)], ("scontrol", "Site", "obs_id"))), obs_id_is_the_data_row),
    "no new sites": (lambda w, c: small(c, csv(w / "d.csv", GOOD_ROWS), new_sites=[]), no_new_site),
    "new_sites left out": (lambda w, c: changed(small(c, csv(w / "d.csv", GOOD_ROWS)), "new_sites", ...), no_new_site),
    "labels with inner spaces and commas": (lambda w, c: small(c, csv(w / "d.csv", [[y, {"A": "New York", "B": "Paris, France"}.get(s, s)] for y, s in GOOD_ROWS]), sites=["New York", "Paris, France"]), nothing),
    "integer outcome values": (lambda w, c: small(c, text(w / "d.csv", "scontrol,Site\n" + "".join(f"{y},{s}\n" for y, s in GOOD_ROWS))), nothing),
    "one-row groups": (lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [46, "D"], [37, "E"]]), sites=["A", "B", "D", "E"]), nothing),
    "duplicated columns the workflow does not use": (lambda w, c: small(c, text(w / "d.csv", "age,scontrol,Site,age\n" + "".join(f"1,{y},{s},2\n" for y, s in GOOD_ROWS))), nothing),
    "priors left out, scaled to the data": (lambda w, c: priors_left_out(small(c, csv(w / "d.csv", GOOD_ROWS))), scaled_priors_recorded),
    "a selection by rule": (lambda w, c: small(c, csv(w / "d.csv", [*GOOD_ROWS, [46, "D"]])) | {"selections": {"s": {"all_except": ["C"], "min_rows": 2}}}, rule_selected),
    "formulas naming the outcome and group by reference": (lambda w, c: other_columns(c, csv(w / "d.csv", GOOD_ROWS, ("y", "g"))), referenced_formula_fitted),
    "semicolons and decimal commas (data.sep, data.decimal)": (lambda w, c: european(w, c), european_read),
    "compressed file (.csv.gz)": (lambda w, c: small(c, gzipped(w / "d.csv.gz", GOOD_ROWS)), nothing),
    "other missing values (data.na_values)": (lambda w, c: changed(small(c, csv(w / "d.csv", [*GOOD_ROWS, [-99, "A"], [-99, "B"]])), "data", "na_values", ["-99"]), dropped_and_logged),
    "prior families in any case": (lambda w, c: small(c, csv(w / "d.csv", GOOD_ROWS)) | {"models": {"partial_pooling": {"priors": LOWER_CASE_PRIORS}}}, families_recorded),
    "zero-padded and numeric group codes": (lambda w, c: small(c, csv(w / "d.csv", [[y, {"A": "011", "B": "11"}.get(s, s)] for y, s in GOOD_ROWS]), sites=["011", 11]), codes_kept),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_input_runs_to_the_end(tmp_path, test_config, name):
    setup, check = ACCEPTED[name]
    run = tmp_path / "run"
    result = run_snakemake(run, light(setup(tmp_path, test_config)), "--cores", "2", timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert (run / "results" / "convergence_gate.txt").is_file()
    check(run)


def test_a_two_valued_outcome_is_warned_about(tmp_path, test_config):
    rows = [[i % 2, s] for i, (_, s) in enumerate(GOOD_ROWS)]
    result = run_snakemake(tmp_path / "run", small(test_config, csv(tmp_path / "d.csv", rows)), "-n", timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "takes two values only (0 and 1)" in result.stdout + result.stderr


def test_a_report_before_any_run_says_to_run_the_workflow_first(tmp_path, test_config):
    result = run_snakemake(tmp_path / "run", test_config, "--report", "results/report.html", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "nothing to report yet" in output and "run the workflow first" in output
    assert not (tmp_path / "run" / "results").exists()


def test_selection_names_the_rules_write_in_results_are_refused():
    """TOP_LEVEL_OUTPUTS holds every file a rule writes directly in results/, and the report."""
    import re

    from hbm.config import TOP_LEVEL_OUTPUTS

    rules = "".join(path.read_text() for path in (ROOT / "workflow" / "rules").glob("*.smk"))
    written = set(re.findall(r'"results/([^/{}"]+)"', rules))
    assert written and written <= set(TOP_LEVEL_OUTPUTS)
    assert "results/report.html" in (ROOT / "Makefile").read_text() and "report.html" in TOP_LEVEL_OUTPUTS


def test_every_case_is_listed_in_the_config_readme():
    listed = (ROOT / "config" / "README.md").read_text()
    missing = [name for name in [*REFUSED, *ACCEPTED, "unreadable file"] if name not in listed]
    assert not missing, f"not in config/README.md: {missing}"
