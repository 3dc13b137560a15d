"""Fixtures shared by the test modules; what they share besides lives in helpers.py."""

import pytest

from hbm import data as hdata
from hbm import io
from helpers import FIRST5, hpp, load_config


@pytest.fixture(scope="session")
def data_path():
    return hpp()


@pytest.fixture
def default_config() -> dict:
    return load_config("config/config.yaml")


@pytest.fixture
def test_config() -> dict:
    return load_config("tests/config/test.yaml")


@pytest.fixture(scope="session")
def first5_csv(tmp_path_factory, data_path):
    """The lecture's five sites as the subset step writes them: (data.csv path, rows)."""
    frame = hdata.read_table(data_path, "scontrol", "Site")
    rows, _ = hdata.subset(frame, "scontrol", "Site", FIRST5)
    path = tmp_path_factory.mktemp("first5") / "data.csv"
    io.write_csv(rows, path)
    return path, rows
