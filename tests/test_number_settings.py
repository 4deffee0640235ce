"""Numbers read from environment variables: defaults, what each kind accepts, one line for a bad value."""

from __future__ import annotations

import math

import pytest

from biodata_cache_pipeline.build_history import Retention
from biodata_cache_pipeline.number_settings import number_setting

VARIABLE = "BIODATA_TEST_NUMBER"


def test_unset_or_blank_gives_the_default(monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    assert number_setting(VARIABLE, 7, "things", "3") == 7
    monkeypatch.setenv(VARIABLE, "  ")
    assert number_setting(VARIABLE, None, "things", "3") is None


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("2.5", 2.5), (" 600 ", 600.0), ("1e3", 1000.0), ("inf", math.inf)])
def test_a_number_of_seconds_may_be_any_number_from_zero(monkeypatch, value, expected):
    monkeypatch.setenv(VARIABLE, value)
    assert number_setting(VARIABLE, 1, "seconds", "600") == expected


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "-inf"])
def test_a_bad_number_is_one_line_naming_the_variable_its_value_and_what_to_do(monkeypatch, value):
    monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(ValueError) as raised:
        number_setting(VARIABLE, 1, "seconds", "600")
    assert str(raised.value) == f"{VARIABLE}={value!r} is not a number of seconds: set it to e.g. 600, or unset it"


@pytest.mark.parametrize("value", ["0", "2.5", "-3", "+4", "ten", "1e3"])
def test_a_positive_whole_number_is_digits_and_not_zero(monkeypatch, value):
    monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(ValueError, match="is not a positive whole number of subjects: set it to e.g. 500"):
        number_setting(VARIABLE, None, "subjects", "500", whole=True, positive=True)
    assert number_setting(VARIABLE, None, "subjects", "500", whole=True, positive=True, text="12") == 12


def test_a_given_text_is_read_instead_of_the_variable(monkeypatch):
    monkeypatch.setenv(VARIABLE, "5")
    assert number_setting(VARIABLE, None, "builds", "30", whole=True, text="") is None
    assert type(number_setting(VARIABLE, None, "builds", "30", whole=True)) is int


def test_the_history_retention_is_read_from_its_variables(monkeypatch):
    monkeypatch.setenv("BIODATA_HISTORY_KEEP_BUILDS", "4")
    monkeypatch.setenv("BIODATA_HISTORY_KEEP_DAYS", "1.5")
    assert Retention.from_environment() == Retention(keep_builds=4, keep_days=1.5)
    monkeypatch.setenv("BIODATA_HISTORY_KEEP_BUILDS", "0")
    with pytest.raises(ValueError, match="BIODATA_HISTORY_KEEP_BUILDS='0' is not a positive whole number of builds"):
        Retention.from_environment()
