"""Checking a config: its schema, then what a schema cannot say."""

from __future__ import annotations

import difflib
from pathlib import Path, PurePosixPath

import jsonschema
import yaml

from hbm.errors import InputError


def check_schema(config, schema_path: str | Path) -> None:
    """Raise one InputError naming the first key that breaks the schema; an unknown key is named
    with the nearest known one."""
    if not isinstance(config, dict):
        raise InputError(f"the config must be a mapping of keys to values, got {type(config).__name__}")
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
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
    raise InputError(f"config key '{where or '(top level)'}': {error.message}")


def normalise_labels(config: dict) -> None:
    """Group labels as the text they are in the data: numbers in `selections` and `new_sites` (e.g.
    county codes written unquoted) become their decimal text, so 27053 and "27053" name one group."""
    for name, spec in config["selections"].items():
        if isinstance(spec, list):
            config["selections"][name] = [str(site) for site in spec]
    config["new_sites"] = [str(site) for site in config.get("new_sites", [])]


def check_config(config: dict) -> None:
    """Checks the schema cannot express: non-empty selections without repeats, path-safe names."""
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


def _check_path_safe(name: str, where: str) -> None:
    path = PurePosixPath(str(name))
    if not str(name) or path.is_absolute() or len(path.parts) != 1 or name in (".", "..") or "\\" in name:
        raise InputError(f"{where} cannot be used as a folder name inside results/")
