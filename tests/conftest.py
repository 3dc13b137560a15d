"""Fixtures shared by the test modules; what they share besides lives in helpers.py."""

import pytest

from helpers import hpp, load_config


@pytest.fixture(scope="session")
def data_path():
    return hpp()


@pytest.fixture
def default_config() -> dict:
    return load_config("config/config.yaml")


@pytest.fixture
def test_config() -> dict:
    return load_config("tests/config/test.yaml")
