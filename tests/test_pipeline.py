"""The whole Dagster graph on a generated corpus: every table, partition and registry entry."""

import json
from collections import Counter
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, DynamicPartitionsDefinition, StaticPartitionsDefinition

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.storage import CacheStore

PROJECT = Path(__file__).resolve().parents[1]
VERSION = version_folder()


def build_cache(monkeypatch, samples: Path, cache: Path) -> DagsterInstance:
    monkeypatch.setenv("BIODATA_SAMPLE_ROOT", str(samples))
    monkeypatch.setenv("BIODATA_CACHE_ROOT", str(cache))
    monkeypatch.delenv("BIODATA_FORAGING_SESSIONS", raising=False)
    instance = DagsterInstance.ephemeral()
    assert not materialize_all(instance, say=lambda _: None).failures
    return instance


def table_files(cache: Path) -> dict[str, bytes]:
    return {str(p.relative_to(cache)): p.read_bytes() for p in sorted(cache.rglob("*.pqt"))}


def rows_of(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, assets=300, seed=7)
    return out


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as monkeypatch:
        instance = build_cache(monkeypatch, corpus, cache)
    return cache, instance


def test_definitions_load_with_every_table():
    from biodata_cache_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {key.path[-1] for key in graph.get_all_asset_keys()} == {*TABLES, "metadata_records", "record_snapshot"}
    qc = defs.get_assets_def("quality_control")
    assert isinstance(qc.partitions_def, DynamicPartitionsDefinition)
    assert qc.partitions_def.name == "subject_id"
    platform = defs.get_assets_def("platform_qc")
    assert isinstance(platform.partitions_def, StaticPartitionsDefinition)
    assert platform.partitions_def.get_partition_keys() == ["spim", "fib", "vr", "dynamic_foraging", "slap2"]
    for name, spec in TABLES.items():
        schema = defs.get_assets_def(name).metadata_by_key[AssetKey(name)]["dagster/column_schema"]
        assert [c.name for c in schema.columns] == spec.column_names


def test_every_asset_tells_its_story_in_the_ui():
    from biodata_cache_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    for name, spec in TABLES.items():
        node = graph.get(AssetKey(name))
        assert node.description == spec.description
        assert node.group_name in {"metadata", "platforms", "quality_control"}
        assert node.owners == ["team:biodata-cache"]
        assert {"dagster/kind/parquet", "table_type"} <= set(node.tags)
        assert {c.name for c in graph.get_check_keys_for_assets({AssetKey(name)})} >= {"schema_matches_declaration"}
    assert defs.resolve_schedule_def("nightly_refresh").job_name == "nightly_tables"


def test_the_graph_reads_source_then_snapshot_then_tables():
    from biodata_cache_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    source, snapshot = AssetKey("metadata_records"), AssetKey("record_snapshot")
    assert graph.get(source).is_external and not graph.get(source).is_materializable
    assert graph.get(snapshot).parent_keys == {source}
    from_snapshot = {key.path[-1] for key in graph.get(snapshot).child_keys}
    assert from_snapshot == set(TABLES) - {"foraging_sessions", "behavior_curriculum"}
    assert graph.get(AssetKey("behavior_curriculum")).parent_keys == {AssetKey("asset_basics")}
    assert defs.resolve_sensor_def("quality_control_subjects").minimum_interval_seconds == 30


def test_code_location_loads_without_warnings():
    load = (
        "import warnings; warnings.simplefilter('error'); from dagster import Definitions; "
        "from biodata_cache_pipeline.definitions import defs; Definitions.validate_loadable(defs)"
    )
    result = subprocess.run([sys.executable, "-c", load], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_workspace_loads_through_dagster_cli():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The command itself is flagged as superseded by `dg check defs`; nothing else may warn.
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if "Warning" in line and "definitions_validate_command" not in line]
    assert warnings == []


def test_every_table_is_published_where_the_layout_says(built):
    cache, _ = built
    version = cache / VERSION
    for name, spec in TABLES.items():
        if spec.partitioned:
            folder = version / spec.object_name
            assert folder.is_dir(), name
            assert all(p.name.startswith(f"{spec.partition_key}=") for p in folder.iterdir())
            location = f"{cache}/{VERSION}/{spec.object_name}/"
        else:
            assert (version / f"{name}.pqt").is_file(), name
            assert pq.read_schema(version / f"{name}.pqt").remove_metadata() == spec.schema
            location = f"{cache}/{VERSION}/{name}.pqt"
        sidecar = json.loads((version / f"{spec.object_name}.json").read_text())
        assert sidecar == {"columns": spec.column_names}
        fragment = json.loads((version / "cache_registry" / f"{name}.json").read_text())
        build = fragment.pop("build")
        assert fragment == spec.registry_entry(location)
        assert build["pipeline_version"].startswith(VERSION.removeprefix("bdc-v"))
        assert build["source"]
    registry = json.loads((version / "cache_registry.json").read_text())
    assert [t["name"] for t in registry["tables"]] == sorted(TABLES)
    assert json.loads((cache / "cache_versions.json").read_text()) == [VERSION]


def test_generated_corpus_fills_every_table(built):
    cache, _ = built
    registry = CacheStore(str(cache)).read_registry()
    for table in registry["tables"]:
        assert table["build"]["row_count"] > 0, f"{table['name']} is empty on the generated corpus"


def test_row_counts_in_the_registry_match_the_files(built):
    cache, _ = built
    version = cache / VERSION
    for table in CacheStore(str(cache)).read_registry()["tables"]:
        spec = TABLES[table["name"]]
        if spec.partitioned:
            files = list((version / spec.object_name).glob("*/data.pqt"))
            assert table["build"]["partitions"] == len(files)
            assert table["build"]["row_count"] == sum(rows_of(f) for f in files)
        else:
            assert table["build"]["row_count"] == rows_of(version / f"{spec.name}.pqt")


def test_subject_partitions_follow_asset_basics(built):
    cache, instance = built
    version = cache / VERSION
    subjects = set(pq.read_table(version / "unique_subject_ids.pqt").column("subject_id").to_pylist())
    basics = set(pq.read_table(version / "asset_basics.pqt").column("subject_id").to_pylist()) - {None}
    assert subjects == basics
    on_disk = {p.name.removeprefix("subject_id=") for p in (version / "qc").iterdir()}
    assert on_disk == subjects
    assert set(instance.get_dynamic_partitions("subject_id")) == subjects
    for folder in (version / "qc").iterdir():
        values = set(pq.read_table(folder / "data.pqt").column("subject_id").to_pylist())
        assert values <= {folder.name.removeprefix("subject_id=")}
    assert any(rows_of(f / "data.pqt") == 0 for f in (version / "qc").iterdir()), "a subject without metrics"


def test_platform_qc_has_all_five_partitions(built):
    cache, _ = built
    folders = sorted(p.name for p in (cache / VERSION / "platform_qc").iterdir())
    assert folders == sorted(f"platform={p}" for p in ["spim", "fib", "vr", "dynamic_foraging", "slap2"])


def test_malformed_records_are_counted_not_fatal(built):
    _, instance = built
    event = instance.get_latest_materialization_event(AssetKey("asset_basics"))
    metadata = event.asset_materialization.metadata
    assert metadata["skipped_records"].value > 0
    assert metadata["skipped_reasons"].value != "none"


def test_duckdb_reads_the_qc_folder_as_the_readme_says(built):
    cache, _ = built
    version = cache / VERSION
    glob = f"{version}/qc/**"
    total, subjects, subject_type = duckdb.sql(
        f"select count(*), count(distinct subject_id), any_value(typeof(subject_id)) "
        f"from read_parquet('{glob}', hive_partitioning=true, union_by_name=true, "
        f"hive_types={{'subject_id': VARCHAR}})"
    ).fetchone()
    files = list((version / "qc").glob("*/data.pqt"))
    assert total == sum(rows_of(f) for f in files)
    assert subject_type == "VARCHAR"
    assert subjects == sum(1 for f in files if rows_of(f) > 0)
    plain = duckdb.sql(
        f"select count(*) from read_parquet('{glob}', hive_partitioning=true, union_by_name=true)"
    ).fetchone()[0]
    assert plain == total


def test_rebuild_of_the_same_input_is_byte_identical(built, corpus, tmp_path, monkeypatch):
    cache, _ = built
    again = tmp_path / "again"
    build_cache(monkeypatch, corpus, again)
    assert table_files(again) == table_files(cache)


def test_removed_subject_loses_its_partition(corpus, tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    subprocess.run(["cp", "-r", str(corpus), str(samples)], check=True)
    cache = tmp_path / "cache"
    instance = build_cache(monkeypatch, samples, cache)
    basics = pq.read_table(cache / VERSION / "asset_basics.pqt").select(["name", "subject_id"]).to_pylist()
    records = Counter(row["subject_id"] for row in basics if row["subject_id"])
    gone = min(records, key=lambda subject: (records[subject], subject))  # a small loss, within the publish guard
    for row in basics:
        if row["subject_id"] == gone:
            subprocess.run(["rm", "-rf", str(samples / row["name"])], check=True)

    assert not materialize_all(instance, say=lambda _: None).failures

    assert not (cache / VERSION / "qc" / f"subject_id={gone}").exists()
    assert gone not in instance.get_dynamic_partitions("subject_id")


def test_whole_graph_on_an_empty_corpus_writes_typed_empty_tables(tmp_path, monkeypatch):
    samples = tmp_path / "empty"
    (samples / "_foraging").mkdir(parents=True)
    pq.write_table(FORAGING_SESSIONS.empty(), samples / "_foraging" / "session_table.parquet")
    cache = tmp_path / "cache"
    build_cache(monkeypatch, samples, cache)
    version = cache / VERSION
    for name, spec in TABLES.items():
        if spec.partitioned:
            continue
        table = pq.read_table(version / f"{name}.pqt")
        assert table.num_rows == 0
        assert table.schema.remove_metadata() == spec.schema
    for folder in (version / "platform_qc").iterdir():
        assert pq.read_table(folder / "data.pqt").num_rows == 0
    assert CacheStore(str(cache)).read_registry()["tables"]


def test_materialize_cli_prints_a_summary(corpus, tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "biodata-cache-pipeline"), "materialize"],
        env={"PATH": "/usr/bin:/bin", "BIODATA_SAMPLE_ROOT": str(corpus), "BIODATA_CACHE_ROOT": str(tmp_path / "c"),
             "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert f"cache: {tmp_path / 'c'}/{VERSION}/" in result.stdout
    for name in TABLES:
        assert any(line.split()[:1] == [name] for line in result.stdout.splitlines()), name
