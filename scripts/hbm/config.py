"""Checking a config: its schema, then what a schema cannot say."""

from __future__ import annotations

import difflib
from pathlib import Path, PurePosixPath

import jsonschema
import yaml

from hbm.errors import InputError

REFERENCES = ("outcome", "group")  # the config keys a formula may name as {outcome} and {group}
LOCATION_SDS = 2.5  # a location prior's sd, in sds of the outcome (rstanarm's autoscaling)
NAME_LIMIT = 100  # characters in a selection or new-site name, which become folder and file names
# JSON Schema's `integer` accepts 5.0 and its `number` accepts true; the consumers of these settings
# (range(), seeds, array sizes) do not, so neither does the workflow.
STRICT = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda checker, value: isinstance(value, int) and not isinstance(value, bool),
            "number": lambda checker, value: isinstance(value, int | float) and not isinstance(value, bool),
        }
    ),
)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise InputError(
                    f"config file {Path(self.name).name}: key {key!r} is given twice (lines {seen[key]} and "
                    f"{key_node.start_mark.line + 1}); YAML would silently keep only the last: merge them"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def check_config_file(path: str | Path) -> None:
    """Refuse a config file that gives a key twice at any level, or a group label that YAML reads as a
    number other than the text written (`010` as 8, `1.10` as 1.1)."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.load(handle, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
        written = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # scalars as text
    except yaml.YAMLError:
        return  # not YAML: Snakemake reports it
    if isinstance(config, dict) and isinstance(written, dict):
        for key, value, text_written in _labels(config, written):
            if isinstance(value, bool):
                continue  # the schema check says how to quote a YAML boolean
            if isinstance(value, float) or (isinstance(value, int) and str(value) != text_written):
                raise InputError(
                    f"config file {Path(path).name}: group label {text_written} under '{key}' is read by YAML as "
                    f"the number {value!r}, not as the text written; quote it ('{text_written}')"
                )


def _labels(config: dict, written: dict):
    """(config key, value as YAML reads it, text as written) of every group label a config file lists."""
    pairs = [("new_sites", config.get("new_sites"), written.get("new_sites"))]
    selections, written_selections = config.get("selections"), written.get("selections")
    if isinstance(selections, dict) and isinstance(written_selections, dict):
        for name, spec in selections.items():
            raw = written_selections.get(str(name))
            if isinstance(spec, dict) and isinstance(raw, dict):
                spec, raw, name = spec.get("all_except"), raw.get("all_except"), f"{name}.all_except"
            pairs.append((f"selections.{name}", spec, raw))
    for key, values, raws in pairs:
        if isinstance(values, list) and isinstance(raws, list) and len(values) == len(raws):
            yield from ((key, value, raw) for value, raw in zip(values, raws) if isinstance(raw, str))


def check_schema(config, schema_path: str | Path) -> None:
    """Raise one InputError naming the first key that breaks the schema; an unknown key is named
    with the nearest known one; the schema's description of the key says why a limit is there."""
    if not isinstance(config, dict):
        raise InputError(f"the config must be a mapping of keys to values, got {type(config).__name__}")
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(STRICT(schema).iter_errors(config))
    if error is None:
        return
    where = ".".join(map(str, error.absolute_path))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in known]
        if known and unknown:
            key = f"{where}.{unknown[0]}" if where else unknown[0]
            near = difflib.get_close_matches(str(unknown[0]), known, n=1, cutoff=0.5)
            hint = f"did you mean '{near[0]}'?" if near else f"known keys here: {', '.join(known)}"
            raise InputError(f"config key '{key}' is not a known key; {hint}")
    raise InputError(f"config key '{where or '(top level)'}': {error.message}{_hint(error)}")


def normalise_prior_names(config, schema_path: str | Path) -> None:
    """Prior families named in any case (normal, halfnormal) take the schema's spelling (Normal,
    HalfNormal); other names are left for the schema to refuse."""
    if not isinstance(config, dict) or not isinstance(config.get("models"), dict):
        return
    definitions = yaml.safe_load(Path(schema_path).read_text())["$defs"]
    families = {
        name.casefold(): name
        for kind in ("location_prior", "scale_prior")
        for name in definitions[kind]["properties"]["dist"]["enum"]
    }
    for spec in config["models"].values():
        priors = spec.get("priors") if isinstance(spec, dict) else None
        for prior in priors.values() if isinstance(priors, dict) else ():
            if isinstance(prior, dict) and isinstance(prior.get("dist"), str):
                prior["dist"] = families.get(prior["dist"].casefold(), prior["dist"])


def _hint(error) -> str:
    """What to do about a schema error, where the value or the schema says more than its message."""
    if isinstance(error.instance, bool):
        return "; YAML reads unquoted yes/no/on/off/true/false as booleans: quote it (e.g. 'NO') if it is a name"
    if isinstance(error.instance, float) and error.validator in ("type", "oneOf"):
        return "; write a whole number, without a decimal point"
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f" ({description})" if description and error.validator != "additionalProperties" else ""


def sampling_settings(config: dict, name: str) -> dict:
    """The `sampling` settings of model `name`: the shared ones with the model's own overrides applied."""
    return {**config["sampling"], **config["models"][name].get("sampling", {})}


def normalise_labels(config: dict) -> None:
    """Group labels as the text they are in the data: numbers in `selections` and `new_sites` (e.g.
    county codes written unquoted) become their decimal text, so 27053 and "27053" name one group. A
    selection's `sample` without a `seed` takes `sampling.seed`."""
    for name, spec in config["selections"].items():
        if isinstance(spec, list):
            config["selections"][name] = [str(site) for site in spec]
        elif isinstance(spec, dict):
            if "all_except" in spec:
                spec["all_except"] = [str(site) for site in spec["all_except"]]
            if "sample" in spec:
                spec.setdefault("seed", config["sampling"]["seed"])
    config["new_sites"] = [str(site) for site in config.get("new_sites", [])]


def resolve_references(config: dict) -> None:
    """`{outcome}` and `{group}` in a formula stand for the configured columns, so the formulas follow
    a change of either; any other `{...}` is refused."""
    for name, spec in config.get("formulas", {}).items():
        formula = spec["formula"]
        for key in REFERENCES:
            formula = formula.replace("{" + key + "}", str(config[key]))
        if "{" in formula or "}" in formula:
            raise InputError(
                f"config key 'formulas.{name}': {spec['formula']!r} has a reference other than "
                + " and ".join("{" + key + "}" for key in REFERENCES)
            )
        spec["formula"] = formula


def missing_priors(config: dict) -> dict[str, list[str]]:
    """Each configured model's parameters that have no prior in the config."""
    from hbm import models

    missing = {
        name: [parameter for parameter in models.get(name).priors if parameter not in spec.get("priors", {})]
        for name, spec in config["models"].items()
    }
    return {name: parameters for name, parameters in missing.items() if parameters}


def scale_priors(config: dict, missing: dict[str, list[str]], mean: float, sd: float) -> dict:
    """Give each parameter in `missing` a weakly informative prior on the outcome's scale, as rstanarm's
    autoscaling does: a location Normal(mean, 2.5 sd), a scale Exponential(1 / sd), where mean and sd are
    the outcome's over the data (to three significant digits). Returns what was scaled, to report."""
    from hbm import models

    mean, sd = _three_digits(mean), _three_digits(sd)
    for name, parameters in missing.items():
        priors = config["models"][name].setdefault("priors", {})
        for parameter in parameters:
            if parameter in models.get(name).scales:
                priors[parameter] = {"dist": "Exponential", "lam": _three_digits(1 / sd)}
            else:
                priors[parameter] = {"dist": "Normal", "mu": mean, "sigma": _three_digits(LOCATION_SDS * sd)}
    return {"outcome_mean": mean, "outcome_sd": sd, "parameters": missing}


def _three_digits(value: float) -> float:
    return float(f"{value:.3g}")


def check_config(config: dict) -> None:
    """Checks the schema cannot express: non-empty selections without repeats, path-safe names,
    distinct outcome and group columns, a palette that exists, a cache folder that can be one, Uniform
    priors with lower < upper."""
    if config["outcome"] == config["group"]:
        raise InputError(f"config keys 'outcome' and 'group' name the same column {config['outcome']!r}")
    cache = Path(config.get("cache_dir", ".cache"))
    if cache.exists() and not cache.is_dir():
        raise InputError(f"config key 'cache_dir': {str(cache)!r} is a file, not a folder for the compile caches")
    _check_palette(config.get("plots", {}).get("palette", "tab10"))
    if config["data"].get("sep", ",") == config["data"].get("decimal", "."):
        raise InputError(
            f"config keys 'data.sep' and 'data.decimal' are both {config['data']['sep']!r}: a number's decimal "
            "mark would split it into two columns"
        )
    for model, spec in config["models"].items():
        for parameter, prior in spec.get("priors", {}).items():
            for key, value in prior.items():
                if key != "dist" and (abs(value) > EXTREME or 0 < abs(value) < 1 / EXTREME):
                    raise InputError(
                        f"config key 'models.{model}.priors.{parameter}.{key}': {value:g} is beyond what the models "
                        f"can compute with (beyond {EXTREME:g} or {1 / EXTREME:g}); rescale the outcome and its priors"
                    )
            if prior["dist"] == "Uniform" and not prior["lower"] < prior["upper"]:
                raise InputError(
                    f"config key 'models.{model}.priors.{parameter}': Uniform needs lower < upper, "
                    f"got lower {prior['lower']:g} and upper {prior['upper']:g}"
                )
    for name, spec in config["selections"].items():
        check_path_safe(name, f"config key 'selections': selection name {name!r}")
        if name in TOP_LEVEL_OUTPUTS:
            raise InputError(
                f"config key 'selections': selection name {name!r} is the name of a file the workflow writes in "
                "results/ for the whole run: rename the selection"
            )
        if isinstance(spec, str):
            if spec != "all":
                raise InputError(f"config key 'selections.{name}': expected a list of sites or 'all', got {spec!r}")
            continue
        if isinstance(spec, dict):
            if "seed" in spec and "sample" not in spec:
                raise InputError(f"config key 'selections.{name}.seed': a seed is for 'sample', which is not given")
            _check_once_each(spec.get("all_except", []), f"config key 'selections.{name}.all_except'")
            continue
        if not spec:
            raise InputError(f"config key 'selections.{name}': the selection is empty")
        _check_once_each(spec, f"config key 'selections.{name}'")
    for site in config.get("new_sites", []):
        check_path_safe(site, f"config key 'new_sites': site {site!r}")
    if config.get("new_sites") and not _predicts_new_sites(config):
        raise InputError(
            "config key 'new_sites': no configured model predicts a site it has not seen (partial_pooling does, "
            f"and so does a formula with a term grouped by {config['group']!r}); add one, or leave new_sites out"
        )
    for name in config.get("formulas", {}):
        check_path_safe(name, f"config key 'formulas': formula name {name!r}")
        if name in config["models"]:
            raise InputError(f"config key 'formulas': formula name {name!r} is also a model's name; rename it")


def _predicts_new_sites(config: dict) -> bool:
    """Whether a model or formula of the config predicts new sites (a malformed formula counts: its own
    check names it)."""
    from hbm import formulas, models

    if models.population_model(config["models"]):
        return True
    for spec in config.get("formulas", {}).values():
        try:
            if formulas.predicts_new_sites(spec["formula"], config["group"]):
                return True
        except InputError:
            return True
    return False


def _check_once_each(sites: list[str], where: str) -> None:
    seen = set()
    for site in sites:
        if site in seen:
            raise InputError(f"{where}: site {site!r} is listed twice")
        seen.add(site)


EXTREME = 1e100  # outcomes and prior parameters beyond it (or below its inverse) overflow or underflow

# The files the workflow writes directly in results/ (the rules name them; tests/test_refusals.py checks
# this list against the rules): a selection, whose results go to results/{selection}/, must not take their names.
TOP_LEVEL_OUTPUTS = ("all_sites_boxplot.png", "convergence_gate.txt", "findings.txt", "report.html")


def check_path_safe(name: str, where: str) -> None:
    """Refuse a name that cannot be a folder or file name of its own inside results/."""
    path = PurePosixPath(str(name))
    if not str(name) or path.is_absolute() or len(path.parts) != 1 or name in (".", "..") or "\\" in name:
        raise InputError(
            f"{where} cannot name a file or folder of its own inside results/ (it is empty, '.' or '..', or has "
            "a / or \\ in it): rename it"
        )
    if "{" in name or "}" in name:
        raise InputError(f"{where} contains {{ or }}, which Snakemake reads as a wildcard in file names: rename it")
    if len(name) > NAME_LIMIT:
        raise InputError(f"{where[:80]}... is longer than {NAME_LIMIT} characters, too long for its result files")


def _check_palette(name: str) -> None:
    if name == "tab10":  # the default; seaborn takes a second or two to import
        return
    import seaborn as sns

    try:
        sns.color_palette(name)
    except (ValueError, KeyError):
        raise InputError(
            f"config key 'plots.palette': {name!r} is not a matplotlib colormap or seaborn palette "
            "(e.g. tab10, deep, colorblind, viridis)"
        ) from None


def describe_prior(spec: dict) -> str:
    """A config prior as one reads it: Normal(mu=40, sigma=20)."""
    return f"{spec['dist']}({', '.join(f'{key}={value:g}' for key, value in spec.items() if key != 'dist')})"
