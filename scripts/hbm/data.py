"""Reading, checking and subsetting the grouped data; per-group sufficient statistics."""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hbm import models
from hbm.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grouped:
    """Rows of one selection: outcome `y`, group index per row, and group labels."""

    y: np.ndarray
    site_idx: np.ndarray
    sites: list[str]
    obs_id: np.ndarray

    @cached_property
    def n(self) -> np.ndarray:
        return np.bincount(self.site_idx, minlength=len(self.sites)).astype(float)

    @cached_property
    def ybar(self) -> np.ndarray:
        return np.bincount(self.site_idx, weights=self.y, minlength=len(self.sites)) / self.n

    @cached_property
    def ss(self) -> np.ndarray:
        """Sum of squared deviations from each group's own mean."""
        dev = self.y - self.ybar[self.site_idx]
        return np.bincount(self.site_idx, weights=dev**2, minlength=len(self.sites))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, outcome: str, group: str, sites: list[str]) -> Grouped:
        codes = pd.Categorical(frame[group], categories=sites).codes
        return cls(
            y=frame[outcome].to_numpy(float),
            site_idx=np.asarray(codes, dtype=np.int64),
            sites=list(sites),
            obs_id=frame["obs_id"].to_numpy(np.int64),
        )


def sha256_normalised(path: str | Path) -> str:
    """sha256 of a text file with CRLF/CR line endings turned into LF and one final newline."""
    text = Path(path).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(text.rstrip(b"\n") + b"\n").hexdigest()


def read_table(path: str | Path, outcome: str, group: str) -> pd.DataFrame:
    """Read the CSV and check the outcome and group columns; `obs_id` is the 0-based data row."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        frame = pd.read_csv(path, na_values=["NA", ""], keep_default_na=False, encoding="utf-8", dtype={group: str})
    except (UnicodeDecodeError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"data file {path} is not a readable CSV file: {err}") from None
    if len(header) < 2 or frame.empty:
        raise InputError(f"data file {path} is not a CSV table with a header and rows")
    for key, column in (("outcome", outcome), ("group", group)):
        if column not in frame.columns:
            raise InputError(
                f"config key '{key}': column '{column}' is not in {path} "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
    values = pd.to_numeric(frame[outcome], errors="coerce")
    for problem, bad in (
        ("non-numeric values", frame.index[values.isna() & frame[outcome].notna()]),
        ("infinite values", frame.index[np.isinf(values.to_numpy(float))]),
    ):
        if len(bad):
            shown = ", ".join(f"row {i + 2} ({str(frame[outcome][i])!r})" for i in bad[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise InputError(f"outcome column '{outcome}' in {path} has {problem}: {shown}{more}")
    if frame[group].isna().any():
        rows = ", ".join(str(i + 2) for i in frame.index[frame[group].isna()][:10])
        raise InputError(f"group column '{group}' in {path} is empty in rows {rows}")
    frame[outcome] = values.astype(float)
    frame[group] = frame[group].astype(str)
    frame.insert(0, "obs_id", np.arange(len(frame), dtype=np.int64))
    return frame


def resolve_selection(spec: list[str] | str, known: list[str], new_sites: list[str]) -> list[str]:
    """A selection is a list of group labels, or the word 'all' for every group but the new sites."""
    if spec == "all":
        return [site for site in known if site not in new_sites]
    return list(spec)


def check_config_against_data(config: dict, frame: pd.DataFrame, source: str) -> dict[str, list[str]]:
    """Check selections and new sites against the data; return each selection's group labels."""
    outcome, group = config["outcome"], config["group"]
    known = sorted(frame[group].unique())
    with_outcome = set(frame.loc[frame[outcome].notna(), group])
    new_sites = list(config.get("new_sites", []))
    for site in new_sites:
        if site not in known:
            raise InputError(
                f"config key 'new_sites': site {site!r} is not in column '{group}' of {source} "
                f"(known sites: {', '.join(known)})"
            )
        if site not in with_outcome:
            raise InputError(f"config key 'new_sites': site {site!r} has no rows with a value of '{outcome}'")
    resolved = {}
    for name, spec in config["selections"].items():
        where = f"config key 'selections.{name}'"
        sites = resolve_selection(spec, known, new_sites)
        for site in sites:
            if site not in known:
                raise InputError(
                    f"{where}: site {site!r} is not in column '{group}' of {source} (known sites: {', '.join(known)})"
                )
            if site not in with_outcome:
                raise InputError(
                    f"{where}: site {site!r} has no rows left after dropping rows with a missing '{outcome}'"
                )
            if site in new_sites:
                raise InputError(f"{where}: site {site!r} is also a new site to be predicted from it")
        population = models.population_model(config["models"])
        if population and len(sites) < 2:
            raise InputError(f"{where}: {models.get(population).label} needs at least two sites, got {len(sites)}")
        resolved[name] = sites
    return resolved


def subset(frame: pd.DataFrame, outcome: str, group: str, sites: list[str]) -> tuple[pd.DataFrame, int]:
    """Rows of `sites` in selection order with a present outcome; also the count of rows dropped."""
    rows = frame[frame[group].isin(sites)]
    kept = rows[rows[outcome].notna()]
    order = pd.Categorical(kept[group], categories=sites).codes
    kept = kept.assign(_order=order).sort_values(["_order", "obs_id"], kind="stable")
    return kept[["obs_id", group, outcome]].reset_index(drop=True), len(rows) - len(kept)
