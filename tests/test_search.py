"""`bdc.search` / `bdc.search_count` on a cache built by the pipeline from the sample corpus.

The expected answer of every search is computed here with pandas over the whole tables
(`asset_basics()` and `quality_control(None)`), not with SQL, and compared row for row.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import polars
import pyarrow as pa
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.layout import version_folder

pytestmark = pytest.mark.usefixtures("client_settings")
INJECTION = "x' OR 1=1 --"


@pytest.fixture
def sample(client_local_cache) -> dict:
    """The whole asset_basics (Arrow and pandas) and each asset's worst QC status, read without SQL."""
    bdc.configure(root=client_local_cache)
    table = bdc.asset_basics(as_="arrow")
    basics = bdc.asset_basics()
    basics["started"] = pd.to_datetime(basics["acquisition_start_time"], utc=True, errors="coerce", format="ISO8601")
    qc = bdc.quality_control(None)
    worst = qc.dropna(subset=["status"]).groupby("asset_name", observed=True)["status"].max()
    return {"table": table, "basics": basics, "worst": worst}


def expected_positions(sample: dict, **filters) -> list[int]:
    """Row positions in asset_basics that `search(**filters)` must give, in its order."""
    basics = sample["basics"]
    keep = pd.Series(True, index=basics.index)
    for name in ("subject_id", "project_name", "data_level"):
        if name in filters:
            keep &= basics[name] == str(filters[name])
    if "modality" in filters:
        wanted = filters["modality"].lower()
        keep &= basics["modalities"].map(lambda modalities: any(m and m.lower() == wanted for m in modalities or []))
    if "name_contains" in filters:
        keep &= basics["name"].str.lower().str.contains(filters["name_contains"].lower(), regex=False)
    if "acquired_after" in filters:
        keep &= basics["started"] >= as_utc(filters["acquired_after"])
    if "acquired_before" in filters:
        keep &= basics["started"] < as_utc(filters["acquired_before"])
    if "qc_status" in filters:
        worst = sample["worst"]
        good = set(worst[worst <= filters["qc_status"]].index)
        keep &= basics["name"].isin(good)
    chosen = basics[keep].sort_values(["started", "name", "_id"], na_position="last", kind="stable")
    return chosen.index.tolist()


def as_utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def busiest_subject(sample: dict) -> str:
    """The subject with the most assets that have a QC status (so every QC level is exercised)."""
    rated = sample["basics"][sample["basics"]["name"].isin(sample["worst"].index)]
    return rated["subject_id"].value_counts().index[0]


def filter_cases(sample: dict) -> list[dict]:
    basics = sample["basics"]
    subject = busiest_subject(sample)
    project = basics["project_name"].value_counts().index[0]
    started = basics["started"].dropna().sort_values()
    middle = started.iloc[len(started) // 2]
    return [
        {},
        {"subject_id": subject},
        {"subject_id": int(subject)},
        {"modality": "spim"},
        {"modality": "Behavior-Videos", "data_level": "raw"},
        {"project_name": project, "data_level": "derived"},
        {"name_contains": "PROCESSED"},
        {"name_contains": "_"},  # literal, not a LIKE wildcard
        {"acquired_after": middle.isoformat()},
        {"acquired_before": middle.date()},
        {"acquired_after": (middle - timedelta(days=30)).tz_convert("America/Los_Angeles").to_pydatetime(),
         "acquired_before": middle.strftime("%Y-%m-%dT%H:%M:%S")},
        {"qc_status": "Pass"},
        {"qc_status": "Pending"},
        {"qc_status": "Fail"},
        {"qc_status": "Pending", "subject_id": subject},
        {"qc_status": "Fail", "modality": "fib", "acquired_after": date(2020, 1, 1)},
    ]


def test_every_filter_gives_the_rows_computed_by_hand(sample):
    table = sample["table"]
    totals = set()
    for filters in filter_cases(sample):
        positions = expected_positions(sample, **filters)
        found = bdc.search(**filters, limit=None, as_="arrow")
        assert found.equals(table.take(positions)), filters
        frame = bdc.search(**filters, limit=None)
        assert frame["_id"].tolist() == table.take(positions).column("_id").to_pylist(), filters
        assert frame.attrs["total"] == len(positions) == bdc.search_count(**filters), filters
        totals.add(len(positions))
    # the cases are not trivial: they select different, non-empty, proper subsets
    assert min(totals) > 0 and len(totals) >= 10 and max(totals) == len(table)


def test_qc_status_levels_nest(sample):
    passed, pending, failed = (bdc.search_count(qc_status=s) for s in ("Pass", "Pending", "Fail"))
    assert 0 < passed < pending < failed < len(sample["table"])


def test_pages_are_slices_of_the_whole_answer(sample):
    subject = busiest_subject(sample)
    whole = bdc.search(subject_id=subject, limit=None)["_id"].tolist()
    assert len(whole) > 6
    page = bdc.search(subject_id=subject, limit=4, offset=3)
    assert page["_id"].tolist() == whole[3:7] and page.attrs["total"] == len(whole)
    assert len(bdc.search()) == 100 and bdc.search().attrs["total"] == len(sample["table"])
    beyond = bdc.search(subject_id=subject, offset=len(whole) + 5)
    assert beyond.empty and beyond.attrs["total"] == len(whole)
    assert list(beyond.columns) == list(sample["table"].column_names)
    assert bdc.search(subject_id=subject, limit=0).empty


def test_injection_shaped_values_are_data(sample):
    table = sample["table"]
    for name in ("subject_id", "project_name", "modality", "data_level", "name_contains"):
        assert bdc.search_count(**{name: INJECTION}) == 0, name
        assert bdc.search_count(**{name: "'; DROP TABLE asset_basics; --"}) == 0, name
    assert bdc.search_count(name_contains="%") == 0
    assert bdc.search_count() == len(table)


def test_quality_control_is_read_only_for_qc_status(sample, client_local_cache, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(client_local_cache, copy)
    shutil.rmtree(copy / version_folder() / "qc")
    bdc.configure(root=str(copy))
    assert bdc.search_count(subject_id=busiest_subject(sample)) > 0
    with pytest.raises(bdc.TableNotFoundError, match="table quality_control not found"):
        bdc.search(qc_status="Pass")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"subjet_id": "1"}, "search: unknown filter subjet_id; the filters are subject_id, project_name, modality"),
        ({"qc_status": "pass"}, "search: qc_status='pass' is not one of Pass, Pending, Fail"),
        ({"acquired_after": "last week"}, "search: acquired_after='last week' is not an ISO date or time"),
        ({"acquired_before": 20250101}, "search: acquired_before=20250101 is not a date, a datetime or an ISO date"),
        ({"acquired_after": "2025-03-01", "acquired_before": "2025-02-01"},
         "search: acquired_after='2025-03-01' is not before acquired_before='2025-02-01'"),
        ({"modality": ["SPIM"]}, "search: modality=['SPIM'] is a list, not a string"),
        ({"subject_id": 6.5}, "search: subject_id=6.5 is a float, not a string or an int"),
        ({"limit": -1}, "search: limit=-1 is not a whole number >= 0"),
        ({"limit": "10"}, "search: limit='10' is not a whole number >= 0"),
        ({"offset": -3}, "search: offset=-3 is not a whole number >= 0"),
        ({"as_": "numpy"}, "as_='numpy' is not a result format; use one of 'pandas', 'arrow', 'polars'"),
    ],
)
def test_bad_inputs_give_one_line_errors(sample, arguments, message):
    with pytest.raises(ValueError) as error:
        bdc.search(**arguments)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_search_count_names_itself_in_errors(sample):
    with pytest.raises(ValueError, match=r"^search_count: unknown filter limit; the filters are subject_id"):
        bdc.search_count(limit=3)


def test_search_as_polars_and_arrow_keep_the_declared_types(sample):
    subject = busiest_subject(sample)
    arrow = bdc.search(subject_id=subject, as_="arrow")
    assert isinstance(arrow, pa.Table) and arrow.schema.equals(sample["table"].schema)
    frame = bdc.search(subject_id=subject, as_="polars")
    assert isinstance(frame, polars.DataFrame) and frame.equals(polars.from_arrow(arrow))
    naive = datetime(2025, 1, 1)
    assert bdc.search_count(acquired_after=naive) == bdc.search_count(
        acquired_after=naive.replace(tzinfo=timezone.utc)
    )
