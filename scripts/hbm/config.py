"""Checking a config: its schema, then what a schema cannot say."""

from __future__ import annotations

import difflib
from pathlib import Path, PurePosixPath

import jsonschema
import yaml

from hbm.errors import InputError

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


def check_unique_keys(path: str | Path) -> None:
    """Refuse a config file that gives a key twice at any level."""
    with open(path, encoding="utf-8") as handle:
        try:
            yaml.load(handle, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
        except yaml.YAMLError:
            return  # not YAML: Snakemake reports it


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
    county codes written unquoted) become their decimal text, so 27053 and "27053" name one group."""
    for name, spec in config["selections"].items():
        if isinstance(spec, list):
            config["selections"][name] = [str(site) for site in spec]
    config["new_sites"] = [str(site) for site in config.get("new_sites", [])]


def check_config(config: dict) -> None:
    """Checks the schema cannot express: non-empty selections without repeats, path-safe names,
    distinct outcome and group columns, a palette that exists, a cache folder that can be one."""
    if config["outcome"] == config["group"]:
        raise InputError(f"config keys 'outcome' and 'group' name the same column {config['outcome']!r}")
    cache = Path(config.get("cache_dir", ".cache"))
    if cache.exists() and not cache.is_dir():
        raise InputError(f"config key 'cache_dir': {str(cache)!r} is a file, not a folder for the compile caches")
    _check_palette(config.get("plots", {}).get("palette", "tab10"))
    for name, spec in config["selections"].items():
        _check_path_safe(name, f"config key 'selections': selection name {name!r}")
        if isinstance(spec, str):
            if spec != "all":
                raise InputError(f"config key 'selections.{name}': expected a list of sites or 'all', got {spec!r}")
            continue
        if not spec:
            raise InputError(f"config key 'selections.{name}': the selection is empty")
        seen = set()
        for site in spec:
            if site in seen:
                raise InputError(f"config key 'selections.{name}': site {site!r} is listed twice")
            seen.add(site)
    for site in config.get("new_sites", []):
        _check_path_safe(site, f"config key 'new_sites': site {site!r}")
    for name in config.get("formulas", {}):
        _check_path_safe(name, f"config key 'formulas': formula name {name!r}")
        if name in config["models"]:
            raise InputError(f"config key 'formulas': formula name {name!r} is also a model's name; rename it")


def _check_path_safe(name: str, where: str) -> None:
    path = PurePosixPath(str(name))
    if not str(name) or path.is_absolute() or len(path.parts) != 1 or name in (".", "..") or "\\" in name:
        raise InputError(f"{where} cannot be used as a folder name inside results/")
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
