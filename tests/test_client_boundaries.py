"""What the client may touch: version names and roots stay inside the cache root, and a read-only
`query()` reads the cache's views and nothing else (no file, URL or database, no write)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.layout import version_folder

VERSION = version_folder()
pytestmark = pytest.mark.usefixtures("client_settings")


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# -- version names and roots -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["../x", f"{VERSION}/../../x", "/tmp/x", "bdc-v1", "v0.1", f"{VERSION}\n"])
def test_version_names_are_validated(tmp_path, monkeypatch, version):
    root = tmp_path / "cache"
    frame = pd.DataFrame({"a": [1]})
    expected = re.escape(f"cache version {version!r} is not a version folder name; set BIODATA_CACHE_VERSION")
    with pytest.raises(ValueError, match=expected):
        bdc.configure(backend="LOCAL", root=str(root), version=version)
    assert bdc.current_settings().version is None  # the rejected call changed nothing
    with monkeypatch.context() as environment:  # undone before client_settings resets the configuration
        for name, value in {"BACKEND": "LOCAL", "ROOT": str(root), "VERSION": version}.items():
            environment.setenv(f"BIODATA_CACHE_{name}", value)
        with pytest.raises(ValueError, match=expected):
            bdc.custom("mine", frame)
    assert files_under(tmp_path) == []


def test_version_names_listed_in_the_root_are_validated(tmp_path):
    """A `cache_versions.json` naming `../escape` is corrupt: the version folders are listed instead."""
    root = tmp_path / "cache"
    (root / VERSION).mkdir(parents=True)
    (root / "cache_versions.json").write_text(json.dumps(["../escape"]))
    bdc.configure(backend="LOCAL", root=str(root))
    with pytest.warns(UserWarning, match=r"is not a JSON list of bdc-vX\.Y names; using the version folders found"):
        bdc.custom("mine", pd.DataFrame({"a": [1]}))
    assert [path.name for path in tmp_path.iterdir()] == ["cache"]
    assert (root / VERSION / "custom" / "mine.pqt").is_file()


@pytest.mark.parametrize(
    ("root", "why"),
    [
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("memory://", "names no store"),
        ("s3:", "is not an s3:// or memory:// URI"),
        ("s3:/bucket/prefix", "is not an s3:// or memory:// URI"),
        ("gs://bucket/prefix", "is not an s3:// or memory:// URI"),
    ],
)
def test_uri_roots_never_become_local_folders(tmp_path, monkeypatch, root, why):
    monkeypatch.chdir(tmp_path)
    expected = (
        rf"^cache root {re.escape(repr(root))} {why}.*; set BIODATA_CACHE_ROOT or configure\(root=\.\.\.\) to "
        r"s3://bucket/prefix, memory://name or a local folder$"
    )
    with pytest.raises(ValueError, match=expected):
        bdc.configure(backend="LOCAL", root=root)
    assert bdc.current_settings().backend == "S3"  # unchanged
    with monkeypatch.context() as environment:
        environment.setenv("BIODATA_CACHE_BACKEND", "LOCAL")
        environment.setenv("BIODATA_CACHE_ROOT", root)
        with pytest.raises(ValueError, match=expected):
            bdc.custom("mine", pd.DataFrame({"a": [1]}))
    assert files_under(tmp_path) == []
    # what is still accepted
    assert bdc.configure(backend="LOCAL", root="relative:name/cache").root == str(tmp_path / "relative:name/cache")
    assert bdc.configure(root="s3://bucket/prefix/").root == "s3://bucket/prefix"
    assert bdc.configure(root="memory://store", version="bdc-v12.34").version == "bdc-v12.34"


# -- read-only query() ---------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the cache with a private file in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_text("user,password\nroot,hunter2\n")
    return folder


@pytest.fixture
def local_cache(client_local_cache) -> str:
    bdc.configure(backend="LOCAL", root=client_local_cache)
    return client_local_cache


def test_read_only_query_reads_the_views(local_cache):
    join = (
        "with failing as (select asset_name from quality_control where status = 'Fail') "
        "select b.subject_id, count(*) n from failing f join asset_basics b on f.asset_name = b.name "
        "group by all order by all"
    )
    for sql in ("select count(*) n from asset_basics", join, "from platform_qc select platform, count(*) group by 1 order by 1"):
        pd.testing.assert_frame_equal(bdc.query(sql, read_only=True), bdc.query(sql))
    assert len(bdc.query(join, read_only=True)) > 0
    bdc.custom("picked", pd.DataFrame({"name": bdc.asset_basics(columns=["name"])["name"][:3]}))
    picked = bdc.query('select b.name from custom."picked" p join asset_basics b using (name)', read_only=True)
    assert len(picked) == 3


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("select * from read_csv('{secret}')", "reaches outside the cache's views (Permission Error"),
        ("select * from '{secret}'", "reaches outside the cache's views"),
        ("select * from read_text('{secret}')", "reaches outside the cache's views"),
        ("select * from read_json('{secret}')", "reaches outside the cache's views"),
        ("select * from glob('{outside}/*')", "reaches outside the cache's views"),
        ("select * from read_parquet('{cache}/{version}/asset_basics.pqt')", "reaches outside the cache's views"),
        ("select * from asset_basics, read_csv('{secret}')", "reaches outside the cache's views"),
        ("copy (select * from asset_basics) to '{outside}/copy.csv'", "it is COPY, not one SELECT"),
        ("copy asset_basics to '{outside}/copy.parquet' (format parquet)", "it is COPY, not one SELECT"),
        ("attach '{outside}/new.duckdb' as other", "it is ATTACH, not one SELECT"),
        ("attach ':memory:' as other", "it is ATTACH, not one SELECT"),
        ("install httpfs", "it is LOAD, not one SELECT"),
        ("load httpfs", "it is LOAD, not one SELECT"),
        ("pragma enable_profiling", "it is PRAGMA, not one SELECT"),
        ("set enable_external_access = true", "it is SET, not one SELECT"),
        ("export database '{outside}/export'", "it is EXPORT, not one SELECT"),
        ("create table t as select 1", "it is CREATE, not one SELECT"),
        ("select 1; copy (select 1) to '{outside}/second.csv'", "it is SELECT + COPY, not one SELECT"),
        ("", "it is no statement, not one SELECT"),
    ],
)
def test_read_only_query_refuses_everything_else(local_cache, outside, sql, refusal):
    sql = sql.format(secret=outside / "secret.csv", outside=outside, cache=local_cache, version=VERSION)
    before = files_under(outside)
    with pytest.raises(PermissionError) as raised:
        bdc.query(sql, read_only=True)
    message = str(raised.value)
    assert message.startswith("read-only query refused: ") and refusal in message and "\n" not in message, message
    assert message.endswith("or turn read-only off (query(sql, read_only=False), `biodata-cache sql --no-read-only`)")
    assert files_under(outside) == before


def test_read_only_is_off_by_default_in_python(local_cache, outside):
    """`read_only=False` (the default) keeps DuckDB's full power: files are read, COPY writes."""
    secret = bdc.query(f"select * from read_csv('{outside / 'secret.csv'}')")
    assert secret.to_dict("records") == [{"user": "root", "password": "hunter2"}]
    with pytest.raises(ValueError, match="query\\(\\) returns rows; this statement returns none"):
        bdc.query(f"copy (select name from asset_basics) to '{outside / 'names.csv'}'", read_only=False)
    assert len(pd.read_csv(outside / "names.csv")) == len(bdc.asset_basics())


def test_read_only_query_of_a_missing_table_names_it(local_cache, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(local_cache, root)
    (root / VERSION / "source_data.pqt").unlink()
    bdc.configure(backend="LOCAL", root=str(root))
    with pytest.raises(bdc.TableNotFoundError, match=f"table source_data not found in version folder {VERSION}"):
        bdc.query("select * from source_data", read_only=True)
