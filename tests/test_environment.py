"""Environment selection: BIODATA_CACHE_ENV picks the resource set, variables override resources."""

from __future__ import annotations

import os

import pytest
from aind_dynamic_foraging_database import SESSION_DB
from dagster import Definitions, build_resources

from biodata_cache_pipeline.assets import ALL_ASSETS
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.resources import DocDbRecordsResource, LocalRecordsResource


@pytest.fixture
def clean_env(monkeypatch):
    """No BIODATA_* setting from the caller's shell."""
    for name in list(os.environ):
        if name.startswith("BIODATA_"):
            monkeypatch.delenv(name)
    return monkeypatch


def descriptions(resources: dict) -> dict[str, str]:
    defs = Definitions(assets=ALL_ASSETS, resources=resources)
    return {key: d.description for key, d in defs.get_repository_def().get_top_level_resources().items()}


def test_local_is_the_default(clean_env, tmp_path):
    clean_env.setenv("BIODATA_SAMPLE_ROOT", str(tmp_path))
    resources = pipeline_resources()
    assert isinstance(resources["records"], LocalRecordsResource)
    assert resources["records"].root == str(tmp_path) == resources["open_data"].root
    assert resources["sessions"].path == f"{tmp_path}/_foraging/session_table.parquet"
    assert resources["cache"].root.endswith("/.biodata-cache")
    shown = descriptions(resources)
    assert all(text.startswith("[BIODATA_CACHE_ENV=local]") for text in shown.values())
    assert str(tmp_path) in shown["records"] and ".biodata-cache" in shown["cache_io_manager"]


def test_prod_reads_docdb_open_data_and_session_db_and_writes_s3(clean_env):
    clean_env.setenv("BIODATA_CACHE_ENV", "prod")
    resources = pipeline_resources()
    records = resources["records"]
    assert isinstance(records, DocDbRecordsResource)
    assert (records.host, records.database, records.collection, records.version) == (
        "api.allenneuraldynamics.org", "metadata_index", "data_assets", "v2",
    )
    assert records.loopback_port is None
    assert resources["open_data"].root == "s3://aind-open-data"
    assert resources["sessions"].path == SESSION_DB
    assert resources["cache"].root == "s3://allen-data-views/data-asset-cache"
    shown = descriptions(resources)
    assert all(text.startswith("[BIODATA_CACHE_ENV=prod]") for text in shown.values())
    assert "https://api.allenneuraldynamics.org/v2/metadata_index/data_assets" in shown["records"]
    assert "s3://aind-open-data" in shown["open_data"] and SESSION_DB in shown["sessions"]
    assert "s3://allen-data-views/data-asset-cache" in shown["cache_io_manager"]


def test_per_resource_overrides_and_docdb_env_vars(clean_env):
    settings = {
        "BIODATA_CACHE_ENV": "prod",
        "BIODATA_DOCDB_HOST": "docdb.example.org",
        "BIODATA_DOCDB_DATABASE": "db",
        "BIODATA_DOCDB_COLLECTION": "records",
        "BIODATA_DOCDB_PAGE_SIZE": "50",
        "BIODATA_DOCDB_BATCH_SIZE": "20",
        "BIODATA_DOCDB_RETRY_DELAY": "0.25",
        "BIODATA_OPEN_DATA_ROOT": "s3://mirror/open-data",
        "BIODATA_FORAGING_SESSIONS": "s3://mirror/sessions.parquet",
        "BIODATA_CACHE_ROOT": "s3://staging/cache",
    }
    for name, value in settings.items():
        clean_env.setenv(name, value)
    resources = pipeline_resources()
    assert resources["records"].host.env_var_name == "BIODATA_DOCDB_HOST"  # resolved when a run starts
    with build_resources({"records": resources["records"]}) as built:
        records = built.records
        assert (records.host, records.database, records.collection) == ("docdb.example.org", "db", "records")
        assert (records.page_size, records.batch_size, records.retry_delay) == (50, 20, 0.25)
        source, warnings = records.open()
        assert warnings == []
        assert source.label == "https://docdb.example.org/v2/db/records"
        assert (source.page_size, source.batch_size, source.retry.delay) == (50, 20, 0.25)
    assert resources["open_data"].root == "s3://mirror/open-data"
    assert resources["sessions"].path == "s3://mirror/sessions.parquet"
    assert resources["cache"].root == "s3://staging/cache"
    assert "https://docdb.example.org/v2/db/records" in descriptions(resources)["records"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BIODATA_CACHE_ENV", "production", "BIODATA_CACHE_ENV='production' is not a known environment"),
        ("BIODATA_DOCDB_RETRY_DELAY", "soon", "BIODATA_DOCDB_RETRY_DELAY='soon' is not a number"),
    ],
)
def test_bad_settings_are_named(clean_env, name, value, message):
    clean_env.setenv("BIODATA_CACHE_ENV", "prod")
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        pipeline_resources()
