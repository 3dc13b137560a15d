"""Reading, checking and subsetting the grouped data; per-group sufficient statistics."""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import logging
import lzma
import re
import unicodedata
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hbm import models
from hbm.config import EXTREME, check_path_safe
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

    def without(self, site: str) -> tuple[Grouped, np.ndarray]:
        """The rows of every other site (in the same order), and the outcome of `site`'s rows."""
        return self.dropping([site]), self.y[self.site_idx == self.sites.index(site)]

    def dropping(self, sites) -> Grouped:
        """The rows of every site but `sites`, in the same order."""
        dropped = set(sites)
        kept = np.array([site not in dropped for site in self.sites], dtype=bool)
        rows = kept[self.site_idx]
        new_index = np.cumsum(kept) - 1
        others = [site for site, keep in zip(self.sites, kept) if keep]
        return Grouped(self.y[rows], new_index[self.site_idx[rows]], others, self.obs_id[rows])

    def tied_sites(self) -> list[str]:
        """Sites of two or more rows that are all equal."""
        low = np.full(len(self.sites), np.inf)
        high = np.full(len(self.sites), -np.inf)
        np.minimum.at(low, self.site_idx, self.y)
        np.maximum.at(high, self.site_idx, self.y)
        return [site for site, n, tied in zip(self.sites, self.n, low == high) if n > 1 and tied]

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


# How the data file is written (config `data.sep`, `data.decimal`, `data.na_values`; the schema holds the
# same defaults): values in `na_values` are missing, but group labels are always the text they are.
READING = {"sep": ",", "decimal": ".", "na_values": ["NA", ""]}
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # compressed files pandas reads too


def reading(options: dict | None = None) -> dict:
    """The data file's separator, decimal mark and missing values: `options` (the config's `data`
    section) over the defaults."""
    return {key: (options or {}).get(key, default) for key, default in READING.items()}


def read_table(path: str | Path, outcome: str, group: str, options: dict | None = None) -> pd.DataFrame:
    """Read the outcome and group columns of a UTF-8 table (`options`: see `reading`), refusing with one
    message anything that would make them ambiguous; `obs_id` is the 0-based data row."""
    path, options = Path(path), reading(options)
    header = _header(path, options["sep"])
    for key, column in (("outcome", outcome), ("group", group)):
        if column not in header:
            shown = ", ".join(map(repr, header))
            raise InputError(f"config key '{key}': column {column!r} is not in {path} (columns: {shown})")
        if header.count(column) > 1:
            raise InputError(
                f"column {column!r} appears {header.count(column)} times in the header of {path}: rename one"
            )
    try:
        frame = pd.read_csv(
            path, sep=options["sep"], dtype=str, na_values={outcome: options["na_values"]}, keep_default_na=False
        )
    except pd.errors.ParserError as err:
        raise InputError(f"data file {path} is not a well-formed CSV table: {_parser_problem(err)}") from None
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from None
    except (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile) as err:  # damaged after its first bytes
        raise InputError(f"data file {path} is not a readable {path.suffix} file: {err}") from None
    if frame.empty:
        raise InputError(f"data file {path} has a header but no rows")
    frame = frame[[outcome, group]]
    text = frame[outcome] if options["decimal"] == "." else frame[outcome].str.replace(options["decimal"], ".")
    values = pd.to_numeric(text, errors="coerce")
    for problem, bad in (
        ("non-numeric values", frame.index[values.isna() & frame[outcome].notna()]),
        ("infinite values", frame.index[np.isinf(values.to_numpy(float))]),
    ):
        if len(bad):
            shown = ", ".join(f"row {i + 2} ({str(frame[outcome][i])!r})" for i in bad[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise InputError(f"outcome column {outcome!r} in {path} has {problem}: {shown}{more}")
    _check_labels(frame[group], group, path)
    _check_scale(values, outcome, path)
    frame[outcome] = values.astype(float)
    frame.insert(0, "obs_id", np.arange(len(frame), dtype=np.int64))
    return frame


def _check_scale(values: pd.Series, outcome: str, path: Path) -> None:
    """Refuse an outcome whose values or spread are so large or small that the models' squares of them
    overflow or underflow in double precision; the message says by how much to rescale it."""
    present = values.dropna()
    largest = float(present.abs().max()) if len(present) else 0.0
    # the spread of values scaled to at most 1, scaled back: their squares would underflow otherwise
    spread = float((present / largest).std()) * largest if len(present) > 1 and largest > 0 else 0.0
    if largest > EXTREME:
        factor = f"{10.0 ** np.floor(np.log10(largest)):.0e}"
        problem, fix = f"values as large as {largest:.3g}", f"divide it by {factor}"
    elif 0 < spread < 1 / EXTREME:
        factor = f"{10.0 ** -np.floor(np.log10(spread)):.0e}"
        problem, fix = f"a standard deviation of {spread:.3g}", f"multiply it by {factor}"
    else:
        return
    raise InputError(
        f"outcome column {outcome!r} in {path} has {problem}, beyond what the models can compute with "
        f"(their squares overflow or vanish): rescale the outcome ({fix}) and give priors on that scale"
    )


def open_text(path: Path, mode: str = "rt", **kwargs):
    """The data file opened as text (`mode` "rt") or bytes ("rb"), decompressed where its name says so."""
    opener = OPENERS.get(path.suffix.lower())
    return opener(path, mode, **kwargs) if opener else path.open(mode.replace("t", ""), **kwargs)


def _header(path: Path, sep: str = ",") -> list[str]:
    """The file's column names, refusing what is not a UTF-8 table separated by `sep`."""
    if path.is_dir():
        raise InputError(f"config key 'data.path': {path} is a directory, not a data file")
    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    try:
        with open_text(path, "rb") as handle:
            start = handle.read(8192)
        if b"\x00" in start:
            raise InputError(f"data file {path} is a binary file, not a CSV table")
        with open_text(path, "rt", newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle, delimiter=sep), [])
    except PermissionError:
        raise InputError(f"data file {path} cannot be read (permission denied)") from None
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as err:  # a damaged compressed file
        if path.suffix.lower() not in OPENERS:
            raise
        raise InputError(f"data file {path} is not a readable {path.suffix} file: {err}") from None
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from None
    except csv.Error as err:
        raise InputError(f"data file {path} is not a readable CSV file: {err}") from None
    if not header:
        raise InputError(f"data file {path} is empty")
    if len(header) == 1:
        for name, delimiter in ((",", ","), ("';'", ";"), ("tab", "\t"), ("'|'", "|")):
            if delimiter != sep and delimiter in header[0]:
                raise InputError(
                    f"data file {path} separates its columns with {name}, not {sep!r}: set data.sep: {delimiter!r} "
                    "in the config"
                )
        raise InputError(f"data file {path} is not a CSV table with a header and rows (one column: {header[0]!r})")
    return header


def _not_utf8(path: Path, err: UnicodeDecodeError) -> InputError:
    return InputError(f"data file {path} is not UTF-8 text (byte {err.object[err.start]:#04x}): save it as UTF-8")


def _parser_problem(err: Exception) -> str:
    """pandas' tokenizer error in plain words (the line and field counts)."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if found:
        expected, line, saw = found.groups()
        return f"line {line} has {saw} fields, the header has {expected}"
    return str(err)


# Group labels that look alike to a reader and would silently be two groups: how they differ -> the form
# they share. Printed with ascii(), so that the difference shows.
TWINS = {
    "in spaces at their ends": str.strip,
    "in their Unicode form (composed and decomposed accents)": lambda label: unicodedata.normalize("NFC", label),
    "in upper and lower case": lambda label: unicodedata.normalize("NFC", label).casefold(),
}


def _check_labels(labels: pd.Series, group: str, path: Path) -> None:
    """Group labels are text: none may be empty, and no two may differ only in spaces at their ends, in
    their Unicode form or in case."""
    empty = labels.index[labels.isna() | (labels == "")]
    if len(empty):
        rows = ", ".join(str(i + 2) for i in empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise InputError(f"group column {group!r} in {path} is empty in row{'s' if len(empty) > 1 else ''} {rows}")
    distinct = pd.Series(labels.unique())
    for how, form in TWINS.items():
        same = distinct.map(form)
        twins = distinct[same.duplicated(keep=False)]
        if len(twins):
            first = twins[same[twins.index] == same[twins.index[0]]]
            rows = {label: int(labels.index[labels == label][0]) + 2 for label in first}
            shown = " and ".join(f"{ascii(label)} (first in row {row})" for label, row in rows.items())
            raise InputError(
                f"group column {group!r} in {path}: labels {shown} differ only {how}; "
                "make them one label, or two that differ otherwise"
            )


def resolve_selection(spec: list[str] | str | dict, counts: pd.Series, new_sites: list[str], key: str) -> list[str]:
    """A selection's groups: a list of labels; 'all', every group but the new sites; or a rule, applied in
    sorted order to every group with an outcome but the new sites: leave out `all_except`, keep groups of
    at least `min_rows` rows, then draw `sample` of them at random with `seed`. `counts`: rows with an
    outcome per group, every group of the data; `key`: the selection's config key, for messages."""
    if spec == "all":
        return [site for site in counts.index if site not in new_sites]
    if isinstance(spec, list):
        return list(spec)
    for site in spec.get("all_except", []):
        if site not in counts.index:
            raise InputError(f"config key '{key}.all_except': site {site!r} is not a group of the data")
    left_out = set(spec.get("all_except", [])) | set(new_sites)
    sites = [site for site, n in counts.items() if n >= spec.get("min_rows", 1) and site not in left_out]
    if "sample" in spec:
        if spec["sample"] > len(sites):
            asked = f"{spec['sample']} groups asked for"
            raise InputError(f"config key '{key}.sample': {asked}, but the rule leaves {len(sites)}")
        chosen = np.random.default_rng(spec["seed"]).choice(len(sites), size=spec["sample"], replace=False)
        sites = [sites[index] for index in sorted(chosen)]
    if not sites:
        raise InputError(f"config key '{key}': the rule leaves no group")
    return sites


def check_config_against_data(config: dict, frame: pd.DataFrame, source: str) -> dict[str, list[str]]:
    """Check selections and new sites against the data; return each selection's group labels."""
    outcome, group = config["outcome"], config["group"]
    known = sorted(frame[group].unique())
    listed = ", ".join(map(repr, known[:50])) + (f" and {len(known) - 50} more" if len(known) > 50 else "")
    present = frame[frame[outcome].notna()]
    with_outcome = set(present[group])
    counts = present[group].value_counts().reindex(known, fill_value=0)
    new_sites = list(config.get("new_sites", []))
    for site in new_sites:
        check_path_safe(site, f"config key 'new_sites': site {site!r}")
        if site not in known:
            raise InputError(
                f"config key 'new_sites': site {site!r} is not in column {group!r} of {source}"
                f"{_did_you_mean(site, known)} (known sites: {listed})"
            )
        if site not in with_outcome:
            raise InputError(f"config key 'new_sites': site {site!r} has no rows with a value of {outcome!r}")
    resolved = {}
    for name, spec in config["selections"].items():
        where = f"config key 'selections.{name}'"
        sites = resolve_selection(spec, counts, new_sites, f"selections.{name}")
        for site in sites:
            if config.get("criticism", {}).get("leave_one_site_out"):  # a fold file is named after each site
                check_path_safe(site, f"{where}: site {site!r}, left out in a fold of its own,")
            if site not in known:
                raise InputError(
                    f"{where}: site {site!r} is not in column {group!r} of {source}{_did_you_mean(site, known)} "
                    f"(known sites: {listed})"
                )
            if site not in with_outcome:
                raise InputError(
                    f"{where}: site {site!r} has no rows left after dropping rows with a missing {outcome!r}"
                )
            if site in new_sites:
                raise InputError(f"{where}: site {site!r} is also a new site to be predicted from it")
        population = models.population_model(config["models"])
        if population and len(sites) < 2:
            raise InputError(f"{where}: {models.get(population).label} needs at least two sites, got {len(sites)}")
        if len(sites) == 2 and _population_per_fold(config):
            raise InputError(
                f"{where}: with two sites, leave one site out would fit a population of site means to the one "
                "site left in each fold; add sites to the selection, or set criticism.leave_one_site_out: false"
            )
        rows = present[present[group].isin(sites)]
        _check_proper(rows, outcome, group, where)
        resolved[name] = sites
        _check_storage(config, len(rows), f"selection {name!r}")
    for site in new_sites:
        _check_storage(config, int((present[group] == site).sum()), f"new site {site!r}")
    return resolved


def _did_you_mean(site: str, known: list[str]) -> str:
    """'; did you mean X?' for a known label that differs from `site` only in case, accents or spaces,
    or is close to it; '' if none is."""
    import difflib

    def plain(label):
        text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
        return " ".join(text.casefold().split())

    alike = [label for label in known if plain(label) == plain(site)]
    alike = alike or difflib.get_close_matches(site, known, n=1, cutoff=0.8)
    return f"; did you mean {alike[0]!r}?" if alike else ""


def _population_per_fold(config: dict) -> bool:
    """Whether leave one site out fits a model with a population of site means in each fold: partial
    pooling, or a formula with a term grouped by the data's group."""
    criticism = config.get("criticism", {})
    if not criticism.get("leave_one_site_out"):
        return False
    if models.population_model(config["models"]):
        return True
    if not criticism.get("leave_one_site_out_formulas", True):
        return False
    from hbm import formulas

    return any(
        formulas.predicts_new_sites(spec["formula"], config["group"]) for spec in config.get("formulas", {}).values()
    )


def check_formulas(config: dict, path: Path, resolved: dict[str, list[str]]) -> None:
    """Refuse formulas that cannot run on this data file (see `hbm.formulas.check`), or on the rows of a
    selection they would fit (`resolved`: each selection's groups; `hbm.formulas.check_design`)."""
    from hbm import formulas

    if not config.get("formulas"):
        return
    columns = _header(Path(path), reading(config.get("data"))["sep"])
    for name, spec in config["formulas"].items():
        formulas.check(name, spec, config, columns)
        for column in sorted(formulas.variables(spec["formula"])):
            if columns.count(column) > 1:
                raise InputError(
                    f"config key 'formulas.{name}': column {column!r} appears {columns.count(column)} times in "
                    f"the header of {path}: rename one"
                )
    outcome, group = config["outcome"], config["group"]
    used = set().union(*(formulas.variables(spec["formula"]) for spec in config["formulas"].values()))
    frame = formulas.read_columns(path, used | {outcome, group}, group, config.get("data"))
    for name, spec in config["formulas"].items():
        formulas.check_on_data(name, spec, frame, group)
        for selection, sites in resolved.items():
            rows = frame[frame[group].isin(sites) & frame[outcome].notna()]
            formulas.check_design(name, spec, rows, selection)


def model_data(data: Grouped, name: str) -> tuple[Grouped, list[str]]:
    """The rows model `name` is fitted to, and the sites it leaves out: a model whose sites have their own
    sd (`Model.own_sd`) leaves out the sites of two or more equal rows, under which that sd has no
    proper posterior; every other model takes every row."""
    left_out = data.tied_sites() if models.get(name).own_sd else []
    return (data.dropping(left_out) if left_out else data), left_out


def _check_proper(rows: pd.DataFrame, outcome: str, group: str, where: str) -> None:
    """Refuse data under which a Normal model's sd has no proper posterior (its likelihood grows without
    bound as the sd goes to 0): a constant outcome, or an outcome constant within every site. A site of
    two or more equal rows is left out of the models where it would be improper (`model_data`)."""
    values = rows[outcome]
    if values.nunique() == 1:
        raise InputError(
            f"{where}: {outcome!r} is constant ({values.iloc[0]:g}) in this selection, so the Normal models' "
            "sd has no proper posterior; check the outcome column"
        )
    by_site = rows.groupby(group, sort=False)[outcome]
    counts, distinct = by_site.count(), by_site.nunique()
    if (counts > 1).any() and (distinct == 1).all():
        raise InputError(
            f"{where}: {outcome!r} is constant within every site, so the within-site sd has no proper "
            "posterior; check the outcome column"
        )


def _check_storage(config: dict, rows: int, what: str, least: int = 100) -> None:
    """Refuse a `storage.max_values` that would leave fewer than `least` draws per row for an interval."""
    if "storage" not in config or "sampling" not in config:
        return
    limit = config["storage"].get("max_values", 50_000_000)
    draws = config["sampling"]["chains"] * config["sampling"]["draws"]
    kept = min(draws, limit // max(rows, 1))
    if rows and kept < min(least, draws):
        raise InputError(
            f"config key 'storage.max_values': {limit} keeps fewer than {least} draws per row for {what} "
            f"({rows} rows), so its 95% intervals would rest on {kept} draws; set it to at least {least * rows}"
        )


def subset(frame: pd.DataFrame, outcome: str, group: str, sites: list[str]) -> tuple[pd.DataFrame, int]:
    """Rows of `sites` in selection order with a present outcome; also the count of rows dropped."""
    rows = frame[frame[group].isin(sites)]
    kept = rows[rows[outcome].notna()]
    order = pd.Categorical(kept[group], categories=sites).codes
    kept = kept.assign(_order=order).sort_values(["_order", "obs_id"], kind="stable")
    return kept[["obs_id", group, outcome]].reset_index(drop=True), len(rows) - len(kept)
