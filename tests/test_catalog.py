"""`bdc-vX.Y/catalog.duckdb`: plain DuckDB (a separate `python -c` importing only duckdb) attaches
the published catalog, locally and on S3 (moto, with a secret and the httpfs extension), and
reads every table; what it reads equals the client's reads and `query()`'s views."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import duckdb_extension_httpfs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

import biodata_cache_client as bdc
from biodata_cache_client.frames import read_schema
from biodata_cache_client.layout import CATALOG_FILE, version_folder
from biodata_cache_client.reader import current_reader
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.catalog import PARSED_COLUMNS, publish_catalog
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.records import parse_utc
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.storage import CacheStore

VERSION = version_folder()
QC = TABLES["quality_control"]
GENOTYPES = TABLES["unique_genotypes"]
HTTPFS = next(Path(duckdb_extension_httpfs.__file__).parent.glob("extensions/*/httpfs.duckdb_extension"))
pytestmark = pytest.mark.usefixtures("client_settings")

# Plain DuckDB, as a user runs it: attach the catalog, copy each table view to a parquet file, and
# report the views and their column comments. The session's TimeZone is not UTC on purpose.
PLAIN_DUCKDB = """
import json, sys
import duckdb
catalog, out, setup = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
connection = duckdb.connect()
connection.execute("SET TimeZone = 'America/Los_Angeles'")
for statement in setup:
    connection.execute(statement)
connection.execute(f"ATTACH '{catalog}' AS bdc (READ_ONLY)")
views = [row[0] for row in connection.execute(
    "SELECT view_name FROM duckdb_views() WHERE database_name = 'bdc' AND schema_name = 'main' ORDER BY 1"
).fetchall()]
for view in views:
    connection.execute(f"COPY (SELECT * FROM bdc.{view}) TO '{out}/{view}.parquet' (FORMAT parquet)")
comments = connection.execute(
    "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE database_name = 'bdc' AND schema_name = 'main'"
).fetchall()
print(json.dumps({"views": views, "comments": comments}))
"""


def plain_duckdb(catalog: str, out: Path, setup: list[str] = ()) -> tuple[dict[str, pa.Table], list]:
    """The views of `catalog` read by a plain DuckDB process (no AWS variables: only `setup`)."""
    out.mkdir(exist_ok=True)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_DUCKDB, catalog, str(out), json.dumps(list(setup))],
        capture_output=True, text=True, timeout=300, env=environment,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return {view: pq.read_table(out / f"{view}.parquet") for view in report["views"]}, report["comments"]


def moto_secret(aws_env: dict[str, str]) -> list[str]:
    endpoint = aws_env["AWS_ENDPOINT_URL"].removeprefix("http://")
    return [
        f"LOAD '{HTTPFS}'",
        f"CREATE SECRET (TYPE s3, KEY_ID '{aws_env['AWS_ACCESS_KEY_ID']}', SECRET '{aws_env['AWS_SECRET_ACCESS_KEY']}', "
        f"REGION '{aws_env['AWS_REGION']}', ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)",
    ]


def _plain(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_plain(item) for item in value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    """The rows of `columns` as plain values, in a fixed order."""
    return sorted((tuple(_plain(row[c]) for c in columns) for row in table.to_pylist()), key=repr)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame whose list cells (numpy arrays) are tuples, so frames compare cell by cell."""
    return frame.apply(lambda column: column.map(_plain) if column.dtype == object else column)


def assert_equal_to_the_client(views: dict[str, pa.Table], out: Path) -> None:
    """Each view's stored columns equal the client's read; the whole view equals `query()`'s."""
    reader = current_reader()
    for name, view in views.items():
        spec = TABLES[name]
        stored = read_schema(spec).names
        assert view.column_names[: len(stored)] == stored, name
        assert rows(view, stored) == rows(reader.read(spec), stored), name
        queried = bdc.query(f"select * from {name} order by all")
        plain = duckdb.sql(f"select * from read_parquet('{out}/{name}.parquet') order by all").df()
        pd.testing.assert_frame_equal(comparable(queried), comparable(plain), obj=name)


def test_plain_duckdb_reads_every_table_of_the_local_catalog(client_local_cache, tmp_path):
    bdc.configure(root=client_local_cache)
    views, comments = plain_duckdb(f"{client_local_cache}/{VERSION}/{CATALOG_FILE}", tmp_path)

    assert sorted(views) == sorted(TABLES)
    assert_equal_to_the_client(views, tmp_path)
    described = {(table, column): comment for table, column, comment in comments}
    for spec in TABLES.values():
        for column in spec.columns:
            assert described[(spec.name, column.name)] == column.description


def test_typed_columns_parse_the_raw_strings_as_the_pipeline_does(client_local_cache, tmp_path):
    views, _ = plain_duckdb(f"{client_local_cache}/{VERSION}/{CATALOG_FILE}", tmp_path)
    raw_times = views["asset_basics"].column("acquisition_start_time").to_pylist()
    assert any(value and parse_utc(value) and "+" not in value and not value.endswith("Z") for value in raw_times), (
        "the corpus has acquisition times without a UTC offset (read as UTC, not in the session's TimeZone)"
    )
    checked = 0
    for table, columns in PARSED_COLUMNS.items():
        for row in views[table].to_pylist():
            for column, kind in columns.items():
                if kind == "timestamp":
                    assert row[f"{column}_ts"] == parse_utc(row[column]), (table, column, row[column])
                else:
                    assert row[f"{column}_day"] == _date(row[column]), (table, column, row[column])
                checked += row[column] is not None
    assert checked > 100


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def test_plain_duckdb_attaches_the_catalog_on_s3(client_s3_cache, aws_env, tmp_path):
    bdc.configure(root=client_s3_cache)
    catalog = f"{client_s3_cache}/{VERSION}/{CATALOG_FILE}"
    views, _ = plain_duckdb(catalog, tmp_path, moto_secret(aws_env))

    assert sorted(views) == sorted(TABLES)
    assert_equal_to_the_client(views, tmp_path)
    bdc.configure(root=client_s3_cache, local_copy=str(tmp_path / "copy"))  # the catalog through the local copy
    assert_equal_to_the_client(views, tmp_path)


def test_partition_values_keep_leading_zeros_and_slashes_on_s3(fresh_root, aws_env, tmp_path):
    store = CacheStore(fresh_root)
    subjects = ["007", "a/b", "x y%"]
    for subject in subjects:
        store.write_partition(QC, subject, QC.from_rows([_metric(subject)]))
    store.publish_metadata(QC, {"row_count": 3, "partitions": 3})
    assert publish_catalog(store)

    views, _ = plain_duckdb(f"{fresh_root}/{VERSION}/{CATALOG_FILE}", tmp_path, moto_secret(aws_env))
    assert sorted(views) == ["quality_control"]
    assert sorted(views["quality_control"].column("subject_id").to_pylist()) == subjects
    bdc.configure(root=fresh_root)
    assert_equal_to_the_client(views, tmp_path)


def _metric(subject: str) -> dict:
    return {
        "name": "m", "modality": "ecephys", "stage": "Raw data", "value": "1", "status": "Pass",
        "asset_name": f"asset-{subject}", "subject_id": subject, "timestamp": None,
    }


def test_the_catalog_lists_the_tables_built_when_one_fails(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    generate_corpus(corpus, assets=40, seed=5)
    root = str(tmp_path / "cache")
    for name, value in {
        "BIODATA_SAMPLE_ROOT": str(corpus),
        "BIODATA_CACHE_ROOT": root,
        "BIODATA_FORAGING_SESSIONS": str(tmp_path / "nowhere.parquet"),
    }.items():
        monkeypatch.setenv(name, value)
    outcome = materialize_all(DagsterInstance.ephemeral(), say=lambda _: None)
    assert [failure.step for failure in outcome.failures] == ["foraging_sessions"]

    views, _ = plain_duckdb(f"{root}/{VERSION}/{CATALOG_FILE}", tmp_path / "plain")
    assert sorted(views) == sorted(set(TABLES) - {"foraging_sessions"})
    bdc.configure(root=root)
    assert_equal_to_the_client(views, tmp_path / "plain")


def test_an_unchanged_cache_keeps_its_catalog_and_a_table_without_partitions_leaves_it(tmp_path):
    root = str(tmp_path / "cache")
    store, cache = CacheStore(root), CacheResource(root=root)
    store.write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": ["a"]}))
    store.publish_metadata(GENOTYPES, {"row_count": 1})
    store.write_partition(QC, "1", QC.from_rows([_metric("1")]))
    store.publish_metadata(QC, {"row_count": 1, "partitions": 1})
    assert publish_catalog(store)
    catalog = Path(root) / VERSION / CATALOG_FILE
    written = catalog.stat()

    assert not publish_catalog(store), "the same tables give the same bytes: not written again"
    assert catalog.stat().st_ino == written.st_ino and catalog.stat().st_mtime_ns == written.st_mtime_ns
    elsewhere = subprocess.run(  # another process builds the same bytes
        [sys.executable, "-c", "import sys; from biodata_cache_pipeline.catalog import build_catalog; "
         "from biodata_cache_client.schema import TABLES; "
         "sys.stdout.buffer.write(build_catalog([TABLES['quality_control'], TABLES['unique_genotypes']], sys.argv[1]))",
         store.version_uri],
        capture_output=True, timeout=120, check=True,
    )
    assert elsewhere.stdout == catalog.read_bytes()

    assert cache.remove_partitions(QC, ["1"]) == ["1"]
    views, _ = plain_duckdb(str(catalog), tmp_path / "plain")
    assert list(views) == ["unique_genotypes"], "a table with no partition left is not in the catalog"


def test_query_reads_without_an_unreadable_catalog(tmp_path):
    root = str(tmp_path / "cache")
    store = CacheStore(root)
    store.write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": ["a", "b"]}))
    store.publish_metadata(GENOTYPES, {"row_count": 2})
    (Path(root) / VERSION / CATALOG_FILE).write_bytes(b"not a duckdb file")
    bdc.configure(root=root)
    with pytest.warns(UserWarning, match=rf"{CATALOG_FILE} is not a readable DuckDB catalog"):
        assert bdc.query("select genotype from unique_genotypes order by 1")["genotype"].tolist() == ["a", "b"]


def test_read_only_queries_through_the_catalog_stay_inside_the_views(client_local_cache):
    bdc.configure(root=client_local_cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the catalog is read without complaint
        typed = bdc.query("select count(acquisition_start_time_ts) n from asset_basics", read_only=True)
    assert typed["n"][0] > 0
    outside = f"select * from asset_basics, read_parquet('{client_local_cache}/{VERSION}/asset_basics.pqt')"
    with pytest.raises(PermissionError, match="read-only query refused"):
        bdc.query(outside, read_only=True)
