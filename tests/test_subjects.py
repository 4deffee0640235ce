"""Subject partition planning: key safety, fingerprints, and the one-range plan (pure functions)."""

import pyarrow as pa
import pytest

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.subjects import partition_key_problem, plan_subject_refresh, subject_fingerprints


@pytest.mark.parametrize("key", ["828418", "007", "a/b c", "50%,ü", "x" * 200, "Mouse 1 (left)", "a..b", "-"])
def test_safe_keys_are_accepted(key):
    assert partition_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 201, "longer than 200 characters"),
        ("a\nb", "U+000A"),
        ("tab\there", "U+0009"),
        ("nul\0", "U+0000"),
        ("zero\u200bwidth", "U+200B"),
        ("wait...", "Dagster does not allow"),
        (".", "path segments"),
        ("..", "path segments"),
        ("é" * 50, "percent-encoded path segment"),
        ("\ud800", "lone surrogate"),
    ],
)
def test_unsafe_keys_are_rejected_with_a_reason(key, reason):
    problem = partition_key_problem(key)
    assert problem is not None and reason in problem


def basics(rows: list[tuple]) -> pa.Table:
    columns = {name: [None] * len(rows) for name in ASSET_BASICS.column_names}
    columns["subject_id"] = [r[0] for r in rows]
    columns["_id"] = [r[1] for r in rows]
    columns["_last_modified"] = [r[2] for r in rows]
    return ASSET_BASICS.from_columns(columns)


def test_fingerprint_follows_the_records_of_a_subject_not_their_order():
    before = subject_fingerprints(basics([("s1", "a", "t1"), ("s1", "b", "t1"), ("s2", "c", "t1"), (None, "d", "t1")]))
    assert set(before) == {"s1", "s2"}
    assert subject_fingerprints(basics([("s2", "c", "t1"), ("s1", "b", "t1"), ("s1", "a", "t1")])) == before
    modified = subject_fingerprints(basics([("s1", "a", "t2"), ("s1", "b", "t1"), ("s2", "c", "t1")]))
    added = subject_fingerprints(basics([("s1", "a", "t1"), ("s1", "b", "t1"), ("s1", "e", "t1"), ("s2", "c", "t1")]))
    removed = subject_fingerprints(basics([("s1", "a", "t1"), ("s2", "c", "t1")]))
    for changed in (modified, added, removed):
        assert changed["s1"] != before["s1"]
        assert changed["s2"] == before["s2"]


def set_after(keys: list[str], plan) -> list[str]:
    """The partition set once the plan's deletions and additions are applied."""
    remaining = [k for k in keys if k not in plan.unlist]
    return remaining + [k for k in plan.append if k not in remaining]


def assert_one_range_holds_exactly_the_stale(keys: list[str], plan) -> None:
    after = set_after(keys, plan)
    start, end = after.index(plan.run_range[0]), after.index(plan.run_range[1])
    assert after[start : end + 1] == plan.stale


def test_nothing_changed_plans_nothing():
    fingerprints = {"a": "1", "b": "2"}
    plan = plan_subject_refresh(fingerprints, built=dict(fingerprints), partition_keys=["a", "b"], stored=["a", "b"])
    assert (plan.stale, plan.gone, plan.unlist, plan.append, plan.rejected) == ([], [], [], [], {})
    assert plan.run_range is None


def test_changed_subjects_move_to_the_end_so_one_range_holds_exactly_them_and_the_new_ones():
    keys = ["a", "b", "c", "d", "e"]
    built = {k: "old" for k in keys}
    current = {"a": "old", "b": "new", "c": "old", "d": "new", "e": "old", "f": "new"}
    plan = plan_subject_refresh(current, built, keys, stored=keys)
    assert plan.unlist == ["b", "d"]
    assert plan.append == ["b", "d", "f"]
    assert plan.stale == ["b", "d", "f"]
    assert plan.new == ["f"]
    assert_one_range_holds_exactly_the_stale(keys, plan)
    assert plan.fingerprints == {"b": "new", "d": "new", "f": "new"}


def test_stale_subjects_already_at_the_end_are_not_moved():
    built = {"a": "1", "b": "1", "c": "1"}
    plan = plan_subject_refresh({"a": "1", "b": "2", "c": "2"}, built, ["a", "b", "c"])
    assert (plan.unlist, plan.append) == ([], [])
    assert plan.run_range == ("b", "c")


def test_a_fresh_dagster_instance_rebuilds_only_what_storage_says_is_stale():
    built = {"a": "1", "b": "1", "c": "1"}
    plan = plan_subject_refresh({"a": "1", "b": "2", "c": "1", "d": "1"}, built, partition_keys=[])
    assert plan.stale == ["b", "d"]
    assert plan.append == ["a", "c", "b", "d"]
    assert_one_range_holds_exactly_the_stale([], plan)


def test_stale_keys_at_the_end_move_behind_keys_appended_before_them():
    built = {"a": "1", "b": "1", "c": "1"}
    plan = plan_subject_refresh({"a": "1", "b": "2", "c": "1"}, built, partition_keys=["a", "b"])
    assert plan.unlist == ["b"]
    assert plan.append == ["c", "b"]
    assert_one_range_holds_exactly_the_stale(["a", "b"], plan)


def test_gone_subjects_are_those_built_stored_or_listed_but_no_longer_in_asset_basics():
    plan = plan_subject_refresh(
        {"a": "1"}, built={"a": "1", "b": "1"}, partition_keys=["a", "c"], stored=["a", "b", "d"]
    )
    assert plan.gone == ["b", "c", "d"]
    assert plan.unlist == ["c"]
    assert plan.stale == []


def test_rejected_subjects_are_never_planned_and_leave_the_partition_set():
    plan = plan_subject_refresh({"ok": "1", "": "1", "a\nb": "1"}, built={}, partition_keys=["a\nb"])
    assert set(plan.rejected) == {"", "a\nb"}
    assert plan.stale == ["ok"]
    assert plan.gone == ["a\nb"]
    assert plan.unlist == ["a\nb"]


def test_a_full_rebuild_plans_every_subject_in_partition_order():
    built = {"a": "1", "b": "1"}
    plan = plan_subject_refresh({"a": "1", "b": "1", "c": "1"}, built, ["b", "a"], full=True)
    assert plan.stale == ["b", "a", "c"]
    assert plan.unlist == []
    assert plan.run_range == ("b", "c")


def test_the_digest_names_the_change_set():
    one = plan_subject_refresh({"a": "2"}, {"a": "1"}, ["a"])
    same = plan_subject_refresh({"a": "2"}, {"a": "1"}, ["a"])
    other = plan_subject_refresh({"a": "3"}, {"a": "1"}, ["a"])
    assert one.digest == same.digest != other.digest
