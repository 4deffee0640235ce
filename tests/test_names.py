"""Name rules, checked against every example of tables.md, "Name normalisation (shared)".

Expected values come from the spec text, never from running the implementation.
"""

from __future__ import annotations

import pytest

from snapshot_rows import snapshot_rows

from biodata_cache_pipeline.names import (
    apply_name_map,
    first_name_map,
    merge_key,
    normalize_instrument_id,
    normalize_name,
    parse_people,
    resolve_first_names,
)
from biodata_cache_pipeline.records import normalize_record
from biodata_cache_pipeline.tables.asset_basics import build_asset_basics


# --- normalize_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the four examples of the spec
        ("jane.doe", "Jane Doe"),
        ("JANE  DOE", "Jane Doe"),
        ("o'brien", "O Brien"),
        ("a_b-c", "A B C"),
        # the rule itself: non [A-Za-z0-9 ] -> space, collapse, strip, str.title()
        ("  jane   doe  ", "Jane Doe"),
        ("jane\tdoe", "Jane Doe"),  # a tab is not in [A-Za-z0-9 ]: it becomes a space
        ("huy.nguyen", "Huy Nguyen"),
        ("katrina.nguyen", "Katrina Nguyen"),
        ("Zoë Smith", "Zo Smith"),  # non-ASCII letters are not in [A-Za-z]
        ("r2d2 unit", "R2D2 Unit"),  # str.title() capitalises after digits
        ("", ""),
        ("...", ""),
        ("mcdonald", "Mcdonald"),
    ],
)
def test_normalize_name(raw, expected):
    assert normalize_name(raw) == expected


# --- merge key --------------------------------------------------------------------------------


def test_merge_key_lower_case_without_spaces():
    assert merge_key("Jane Doe") == "janedoe"
    assert merge_key("JaneDoe") == "janedoe"


def test_merge_key_spec_example_is_one_person():
    """`Jane Doe`, `jane.doe`, `JaneDoe` are one person (merge key after normalisation)."""
    keys = {merge_key(normalize_name(n)) for n in ("Jane Doe", "jane.doe", "JaneDoe")}
    assert keys == {"janedoe"}


# --- parse_people -----------------------------------------------------------------------------


def test_parse_people_plain_strings():
    assert parse_people(["jane.doe", "Bob Smith"]) == ["Jane Doe", "Bob Smith"]


def test_parse_people_comma_separated_string():
    assert parse_people(["jane.doe, bob smith"]) == ["Jane Doe", "Bob Smith"]
    assert parse_people(["A, B"]) == ["A", "B"]


def test_parse_people_objects_with_name():
    values = [{"name": "jane.doe", "object_type": "Person"}, {"name": "Bob, carol_x"}]
    assert parse_people(values) == ["Jane Doe", "Bob", "Carol X"]


def test_parse_people_drops_empties():
    assert parse_people(["", " , ,", "...", "jane"]) == ["Jane"]


def test_parse_people_dedupes_by_merge_key_first_wins():
    # "JaneDoe" normalises to "Janedoe": same merge key as "Jane Doe" -> the first spelling wins.
    assert parse_people(["Jane Doe", "jane.doe", "JaneDoe", "JANE  DOE"]) == ["Jane Doe"]
    assert parse_people(["JaneDoe", "Jane Doe"]) == ["Janedoe"]


def test_parse_people_mixed_strings_and_objects_dedupe_across_entries():
    values = ["katrina.nguyen", {"name": "Katrina Nguyen"}, "Yoni Browning, katrina nguyen"]
    assert parse_people(values) == ["Katrina Nguyen", "Yoni Browning"]


def test_parse_people_empty_input():
    assert parse_people([]) == []


# --- in-record first-name resolution ----------------------------------------------------------


def test_resolve_first_names_spec_example():
    assert resolve_first_names(["Jane", "Jane Doe", "Bob"]) == ["Jane Doe", "Bob"]


def test_resolve_first_names_keeps_order_when_first_name_comes_after():
    assert resolve_first_names(["Bob", "Jane Doe", "Jane"]) == ["Bob", "Jane Doe"]


def test_resolve_first_names_ambiguous_keeps_everything():
    names = ["Jane", "Jane Doe", "Jane Roe", "Bob"]
    assert resolve_first_names(names) == names


def test_resolve_first_names_only_first_token_counts():
    # "Doe" is the last token of "Jane Doe", not the first: kept.
    assert resolve_first_names(["Doe", "Jane Doe"]) == ["Doe", "Jane Doe"]
    # a single-token name with no matching full name is kept
    assert resolve_first_names(["Jane", "Bob Smith"]) == ["Jane", "Bob Smith"]


def test_resolve_first_names_case_insensitive_token():
    assert resolve_first_names(["JANE", "Jane Doe"]) == ["Jane Doe"]


def test_resolve_first_names_only_single_token_names_are_dropped():
    # "Jane Doe" is not single-token: never dropped even if "Jane Doe Smith" exists.
    assert resolve_first_names(["Jane Doe", "Jane Doe Smith"]) == ["Jane Doe", "Jane Doe Smith"]


# --- table-wide first-name map ----------------------------------------------------------------


def test_first_name_map_unique_full_name():
    assert first_name_map(["Jane", "Jane Doe", "Bob"]) == {"Jane": "Jane Doe"}


def test_first_name_map_ambiguous_gives_no_entry():
    assert first_name_map(["Jane", "Jane Doe", "Jane Roe"]) == {}


def test_first_name_map_case_insensitive():
    assert first_name_map(["JANE", "Jane Doe"]) == {"JANE": "Jane Doe"}


def test_apply_name_map_rewrites_and_drops_duplicates_keeping_first():
    mapping = {"Jane": "Jane Doe"}
    assert apply_name_map(["Jane", "Bob", "Jane Doe"], mapping) == ["Jane Doe", "Bob"]
    assert apply_name_map(["Bob", "Jane Doe", "Jane"], mapping) == ["Bob", "Jane Doe"]
    assert apply_name_map([], mapping) == []


def _record(name: str, experimenters=None, investigators=None) -> dict:
    return {
        "_id": f"id-{name}",
        "name": name,
        "data_description": {"investigators": [{"name": n} for n in investigators or []]},
        "acquisition": {"experimenters": experimenters or []},
    }


def _people_by_name(table) -> dict:
    rows = table.select(["name", "experimenters_normalized", "investigators_normalized"]).to_pylist()
    return {r["name"]: (r["experimenters_normalized"], r["investigators_normalized"]) for r in rows}


def test_table_wide_map_through_build_asset_basics():
    """The map runs over experimenters_normalized and investigators_normalized of all rows."""
    records = [
        _record("a", experimenters=["Jane"]),  # -> Jane Doe (only full Jane in the table)
        _record("b", experimenters=["jane.doe"], investigators=["Kim Lee"]),
        _record("c", investigators=["Kim"], experimenters=["Bob"]),  # Kim -> Kim Lee (other column)
        _record("d", experimenters=["Bob Smith", "Bob Jones"]),  # Bob is ambiguous table-wide
        _record("e", experimenters=["Jane", "Jane Doe", "Al"]),  # in-record resolution first
        _record("f", experimenters=["Jane", "Sam"], investigators=["Jane Doe"]),
    ]
    table = build_asset_basics(snapshot_rows([normalize_record(r) for r in records]))
    people = _people_by_name(table)
    assert people["a"] == (["Jane Doe"], [])
    assert people["b"] == (["Jane Doe"], ["Kim Lee"])
    assert people["c"] == (["Bob"], ["Kim Lee"])
    assert people["d"] == (["Bob Smith", "Bob Jones"], [])
    assert people["e"] == (["Jane Doe", "Al"], [])
    assert people["f"] == (["Jane Doe", "Sam"], ["Jane Doe"])
    # the raw columns are untouched
    raw = {r["name"]: r["experimenters"] for r in table.select(["name", "experimenters"]).to_pylist()}
    assert raw["a"] == ["Jane"]
    assert raw["b"] == ["jane.doe"]


def test_table_wide_map_is_case_insensitive():
    """`JANE` normalises to `Jane` and maps onto the one full name starting with `jane`."""
    records = [_record("x", experimenters=["JANE", "Sam Oak"]), _record("y", experimenters=["jane doe"])]
    people = _people_by_name(build_asset_basics(snapshot_rows([normalize_record(r) for r in records])))
    assert people["x"] == (["Jane Doe", "Sam Oak"], [])
    assert people["y"] == (["Jane Doe"], [])


def test_table_wide_map_ambiguous_across_table_keeps_first_names():
    records = [
        _record("a", experimenters=["Jane"]),
        _record("b", experimenters=["Jane Doe"]),
        _record("c", investigators=["Jane Roe"]),
    ]
    people = _people_by_name(build_asset_basics(snapshot_rows([normalize_record(r) for r in records])))
    assert people["a"] == (["Jane"], [])


# --- normalize_instrument_id ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the spec's examples
        ("440_SmartSPIM1_20240325", "SmartSPIM1"),
        ("FIP_1", "FIP1"),
        ("4A", "4A"),
        ("", ""),
        (None, ""),
        # the rule: the three date forms, group 1 with `_` and `-` deleted
        ("440_SmartSPIM1_2024-03-25", "SmartSPIM1"),
        ("440_SmartSPIM1_240325", "SmartSPIM1"),
        ("446_8A_20250409", "8A"),
        ("325_NP1_Ultra_20240506", "NP1Ultra"),
        ("440-SmartSPIM1_20250116", "SmartSPIM1"),
        # no date suffix (or not preceded by `_`): the whole string without `_` and `-`
        ("SmartSPIM1-1", "SmartSPIM11"),
        ("exaspim-01", "exaspim01"),
        ("429-mesoscope-20220321", "429mesoscope20220321"),
        ("ND_Ephys.5", "NDEphys.5"),
        ("13A", "13A"),
        # a 6-digit tail outside 23xxxx-26xxxx is not a date
        ("440_SmartSPIM1_190325", "440SmartSPIM1190325"),
    ],
)
def test_normalize_instrument_id(raw, expected):
    assert normalize_instrument_id(raw) == expected
