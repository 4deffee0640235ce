"""The notebook client against caches built by the pipeline: a local folder, the memory store, S3 (moto)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.config import DEFAULT_ROOTS
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.storage import CacheStore

VERSION = version_folder()
pytestmark = pytest.mark.usefixtures("client_settings")
FRAME_FUNCTIONS = {
    "asset_basics": bdc.asset_basics,
    "source_data": bdc.source_data,
    "quality_control": lambda: bdc.quality_control(None),
    "platform_qc": bdc.platform_qc,
    "assets_smartspim": bdc.assets_smartspim,
    "platform_fib": bdc.platform_fib,
    "foraging_sessions": bdc.foraging_sessions,
    "behavior_curriculum": bdc.behavior_curriculum,
}
LIST_FUNCTIONS = {
    "unique_project_names": (bdc.unique_project_names, "project_name"),
    "unique_subject_ids": (bdc.unique_subject_ids, "subject_id"),
    "unique_genotypes": (bdc.unique_genotypes, "genotype"),
}


@pytest.fixture(params=["local", "memory", "s3"])
def cache_root(request) -> str:
    """Every backend in turn, selected with configure(root=...)."""
    if request.param == "s3":
        request.getfixturevalue("aws_env")
    root = request.getfixturevalue(f"client_{request.param}_cache")
    bdc.configure(root=root)
    return root


def published_rows(root: str, name: str) -> list[dict]:
    """The table as the writer reads it back, partition column from the path."""
    spec = TABLES[name]
    store = CacheStore(root)
    if not spec.partitioned:
        return store.read_table(spec).to_pylist()
    return [
        {**row, spec.partition_key: value}
        for value in store.list_partitions(spec)
        for row in store.read_partition(spec, value).to_pylist()
    ]


def rows(frame: pd.DataFrame) -> list[dict]:
    return pa.Table.from_pandas(frame, preserve_index=False).to_pylist()


def write_table(root: str, name: str, table: pa.Table, version: str = VERSION) -> None:
    CacheStore(root, version=version).write_table(TABLES[name], table)


# -- every function on every backend -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FRAME_FUNCTIONS))
def test_table_functions_return_the_published_rows(cache_root, name):
    frame = FRAME_FUNCTIONS[name]()
    spec = TABLES[name]
    path_only_key = [] if spec.partition_key in (None, *spec.column_names) else [spec.partition_key]
    assert list(frame.columns) == spec.column_names + path_only_key
    assert len(frame) > 0
    assert rows(frame) == published_rows(cache_root, name)


@pytest.mark.parametrize("name", sorted(LIST_FUNCTIONS))
def test_unique_values_are_lists(cache_root, name):
    function, column = LIST_FUNCTIONS[name]
    values = function()
    assert isinstance(values, list) and values
    assert values == [row[column] for row in published_rows(cache_root, name)]
    assert all(isinstance(v, str) for v in values)


def test_results_are_typed(cache_root):
    basics = bdc.asset_basics()
    for column in ("modalities", "experimenters_normalized", "investigators"):
        assert all(isinstance(v, list) for v in basics[column] if v is not None)
    assert str(basics["age"].dtype) == "Int64"
    assert str(bdc.assets_smartspim()["processed"].dtype) == "boolean"
    qc = bdc.quality_control(None)
    assert str(qc["timestamp"].dtype) == "datetime64[us, UTC]"
    assert qc["status"].cat.ordered
    assert list(qc["status"].cat.categories) == ["Pass", "Pending", "Fail"]
    overall = qc.groupby("asset_name", observed=True)["status"].max()
    assert set(overall.dropna()) <= {"Pass", "Pending", "Fail"}
    assert qc["subject_id"].map(type).eq(str).all()
    platforms = bdc.platform_qc()
    assert platforms["platform"].map(type).eq(str).all()
    assert platforms["status"].cat.ordered


def test_quality_control_by_subject_and_asset(cache_root):
    everything = bdc.quality_control(None)
    subjects = everything["subject_id"].value_counts().index[:2].tolist()
    one = bdc.qc(subjects[0])
    assert set(one["subject_id"]) == {subjects[0]}
    assert len(one) == (everything["subject_id"] == subjects[0]).sum()
    both = bdc.quality_control(subjects)
    assert set(both["subject_id"]) == set(subjects)
    asset = one["asset_name"].iloc[0]
    assert set(bdc.qc(subjects[0], asset_names=asset)["asset_name"]) == {asset}
    assert set(bdc.qc(subjects[0], asset_names=[asset, "nope"])["asset_name"]) == {asset}
    assert bdc.qc(subjects[0], asset_names=[]).empty


def test_quality_control_of_an_unknown_subject_is_empty_with_a_warning(cache_root):
    with pytest.warns(UserWarning, match=r"no partition for subject_id \['no-such-subject'\]"):
        frame = bdc.qc("no-such-subject")
    assert frame.empty and list(frame.columns) == TABLES["quality_control"].column_names


def test_platform_qc_by_platform(cache_root):
    fib = bdc.platform_qc("fib")
    assert len(fib) > 0 and set(fib["platform"]) == {"fib"}
    two = bdc.platform_qc(["fib", "spim"])
    assert set(two["platform"]) == {"fib", "spim"}
    with pytest.raises(ValueError, match=r"unknown platforms \['nope'\]"):
        bdc.platform_qc("nope")


def test_columns_and_filters_are_pushed_down(cache_root):
    basics = bdc.asset_basics()
    raw = bdc.asset_basics(columns=["name", "subject_id"], filters=[("data_level", "=", "raw")])
    assert list(raw.columns) == ["name", "subject_id"]
    assert raw["name"].tolist() == basics.loc[basics["data_level"] == "raw", "name"].tolist()
    either = bdc.asset_basics(columns=["name"], filters=[[("data_level", "=", "raw")], [("age", ">", 100)]])
    expected = basics[(basics["data_level"] == "raw") | (basics["age"] > 100).fillna(False)]
    assert either["name"].tolist() == expected["name"].tolist()
    spim = bdc.platform_qc(filters=[("platform", "in", ["spim"])], columns=["asset_name", "platform"])
    assert set(spim["platform"]) == {"spim"}
    with pytest.raises(ValueError, match=r"asset_basics: unknown columns \['nope'\]"):
        bdc.asset_basics(columns=["name", "nope"])
    with pytest.raises(ValueError, match=r"unknown columns \['nope'\]"):
        bdc.source_data(filters=[("nope", "=", 1)])


def expected_raw_to_derived(sources: list[str], modality: str | None, latest: bool) -> list[str]:
    """The spec's rule, computed independently with pandas."""
    derived = bdc.source_data()
    derived = derived[derived["source_data"].isin(sources)]
    if modality is not None:
        basics = bdc.asset_basics(columns=["name", "modalities"])
        keep = {
            name
            for name, modalities in zip(basics["name"], basics["modalities"])
            if any(modality.lower() in m.lower() for m in modalities)
        }
        derived = derived[derived["name"].isin(keep)]
    if latest:
        derived = derived.sort_values(["processing_time", "name"]).groupby(["source_data", "pipeline_name"]).tail(1)
    order = {s: i for i, s in enumerate(sources)}
    derived = derived.assign(order=derived["source_data"].map(order)).sort_values(["order", "pipeline_name", "name"])
    return list(dict.fromkeys(derived["name"]))


def test_raw_to_derived(cache_root):
    source_data = bdc.source_data()
    reprocessed = source_data.groupby(["source_data", "pipeline_name"]).filter(lambda g: len(g) > 1)
    sources = [*reprocessed["source_data"].unique()[:2], *source_data["source_data"].unique()[-2:][::-1]]
    assert sources
    everything = bdc.raw_to_derived(sources, latest=False)
    newest = bdc.raw_to_derived(sources)
    assert newest == expected_raw_to_derived(sources, None, True)
    assert everything == expected_raw_to_derived(sources, None, False)
    assert len(newest) < len(everything)
    modalities = bdc.asset_basics(columns=["name", "modalities"], filters=[("name", "in", everything)])["modalities"]
    modality = modalities.iloc[0][0].upper()
    assert bdc.raw_to_derived(sources, modality=modality) == expected_raw_to_derived(sources, modality, True)
    assert bdc.raw_to_derived(sources[0]) == expected_raw_to_derived(sources[:1], None, True)
    assert bdc.raw_to_derived(["no-such-asset"]) == []
    assert bdc.raw_to_derived(sources, modality="no-such-modality") == []


def test_query_sees_every_table_as_a_view(cache_root):
    counts = bdc.query(
        "select (select count(*) from asset_basics) basics, (select count(*) from quality_control) qc, "
        "(select count(*) from platform_qc) platform"
    ).iloc[0]
    assert counts["basics"] == len(bdc.asset_basics())
    assert counts["qc"] == len(bdc.quality_control(None))
    assert counts["platform"] == len(bdc.platform_qc())
    types = bdc.query(
        "select distinct typeof(subject_id) t from quality_control union select typeof(platform) from platform_qc"
    )
    assert set(types["t"]) == {"VARCHAR"}
    fails = bdc.query(
        "select b.subject_id, count(*) n from quality_control q join asset_basics b on q.asset_name = b.name "
        "where q.status = 'Fail' group by all"
    )
    qc = bdc.quality_control(None)
    assert fails["n"].sum() == (qc["status"] == "Fail").sum()


def test_registry_versions_and_info(cache_root):
    registry = bdc.get_cache_registry()
    assert [t["name"] for t in registry["tables"]] == sorted(TABLES)
    assert all("build" in t for t in registry["tables"])
    assert bdc.get_cache_versions() == [VERSION]
    info = bdc.cache_info("quality_control")
    assert info["version"] == VERSION
    assert info["location"] == f"{cache_root}/{VERSION}/qc/"
    assert info["rows"] == len(bdc.quality_control(None))
    assert info["partitions"] == len(bdc.unique_subject_ids())
    assert info["built_at"] and info["source"]
    assert bdc.cache_info("asset_basics")["partitions"] is None


def test_custom_tables_round_trip(cache_root):
    frame = pd.DataFrame({"name": ["a", "b"], "score": [1.5, None], "n": [1, 2]})
    bdc.custom("my_table-1", frame)
    pd.testing.assert_frame_equal(bdc.custom("my_table-1"), frame)
    bdc.custom("qc", frame.head(1))  # own namespace: the built qc table is untouched
    assert len(bdc.custom("qc")) == 1
    assert len(bdc.quality_control(None)) == bdc.cache_info("quality_control")["rows"]


# -- errors ------------------------------------------------------------------------------------


@pytest.fixture
def scratch_root(tmp_path) -> str:
    """A local cache with only asset_basics (empty) and a registered version."""
    root = str(tmp_path / "scratch")
    store = CacheStore(root)
    store.write_table(TABLES["asset_basics"], TABLES["asset_basics"].empty())
    store.register_version()
    bdc.configure(backend="local", root=root)
    return root


def test_missing_table_names_table_version_and_root(scratch_root):
    for read in (bdc.source_data, lambda: bdc.qc("1"), lambda: bdc.query("select * from source_data")):
        with pytest.raises(bdc.TableNotFoundError) as error:
            read()
        message = str(error.value)
        assert VERSION in message and scratch_root in message and "get_cache_versions()" in message
    with pytest.raises(bdc.TableNotFoundError, match="table source_data not found"):
        bdc.source_data()
    with pytest.raises(bdc.TableNotFoundError, match="table quality_control not found"):
        bdc.qc("1")


def test_missing_version_is_reported(scratch_root):
    bdc.configure(root=scratch_root, version="bdc-v9.9")
    with pytest.raises(bdc.TableNotFoundError, match=r"bdc-v9\.9 \(bdc-v9\.9 is not listed in cache_versions.json"):
        bdc.asset_basics()


def test_empty_table_is_a_typed_empty_frame(scratch_root, client_local_cache):
    empty = bdc.asset_basics()
    assert empty.empty
    bdc.configure(root=client_local_cache)
    full = bdc.asset_basics()
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    bdc.configure(root=scratch_root)
    assert bdc.query("select count(*) n from asset_basics")["n"][0] == 0


def test_zero_row_partition_is_empty_not_missing(tmp_path):
    root = str(tmp_path / "cache")
    CacheStore(root).write_partition(TABLES["quality_control"], "007", TABLES["quality_control"].empty())
    bdc.configure(root=root)
    frame = bdc.qc("007")
    assert frame.empty and str(frame["status"].dtype) == "category"


@pytest.mark.parametrize("content", [b"", b"PAR1 not parquet", b"x" * 100])
def test_corrupt_object_raises(scratch_root, content):
    Path(scratch_root, VERSION, "asset_basics.pqt").write_bytes(content)
    with pytest.raises(bdc.CacheReadError, match=f"asset_basics.*{scratch_root}"):
        bdc.asset_basics()
    with pytest.raises(bdc.CacheReadError, match="could not read table asset_basics"):
        bdc.query("select * from asset_basics")


def test_corrupt_partition_raises_even_among_good_ones(tmp_path):
    root = str(tmp_path / "cache")
    store = CacheStore(root)
    spec = TABLES["quality_control"]
    store.write_partition(spec, "1", spec.empty())
    store.write_partition(spec, "2", spec.empty())
    Path(store.partition_path(spec, "2")).write_bytes(b"garbage")
    bdc.configure(root=root)
    with pytest.raises(bdc.CacheReadError):
        bdc.quality_control(None)


def test_corrupt_versions_file_falls_back_to_the_version_folders(tmp_path):
    root = tmp_path / "cache"
    genotypes = TABLES["unique_genotypes"]
    for version in ("bdc-v0.0", VERSION, "bdc-v0.10"):
        CacheStore(str(root), version=version).write_table(genotypes, genotypes.from_columns({"genotype": [version]}))
    (root / "notes").mkdir()
    (root / "bdc-v5.5").write_text("a file, not a version folder")
    (root / "cache_versions.json").write_text("{oops")
    bdc.configure(root=str(root))
    fallback = r"cache_versions.json is not valid JSON: .*; using the version folders found under the root instead"
    with pytest.warns(UserWarning, match=fallback):
        assert bdc.get_cache_versions() == ["bdc-v0.0", VERSION, "bdc-v0.10"]  # by number
    with pytest.warns(UserWarning, match=fallback):
        assert bdc.unique_genotypes() == [VERSION]  # unpinned reads still find the installed version

    shutil.rmtree(root / VERSION)
    (root / "cache_versions.json").write_text(json.dumps({"versions": ["bdc-v0.0"]}))
    with pytest.warns(UserWarning) as warned:
        assert bdc.unique_genotypes() == ["bdc-v0.10"]  # the newest by number, not by name
    messages = [str(warning.message) for warning in warned]
    assert "is not a JSON list of bdc-vX.Y names; using the version folders found" in messages[0]
    assert f"{VERSION} (installed biodata-cache" in messages[1] and "reading bdc-v0.10" in messages[1]


def test_deleted_registry_fragment_falls_back_to_the_declaration(client_local_cache, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(client_local_cache, root)
    bdc.configure(root=str(root))
    published = {table["name"]: table for table in bdc.get_cache_registry()["tables"]}
    deleted = ["platform_fib", "quality_control"]
    for name in deleted:
        (root / VERSION / "cache_registry" / f"{name}.json").unlink()
    undescribed = rf"no registry entry for {', '.join(deleted)} in {VERSION}/cache_registry of {root}; described from"
    with pytest.warns(UserWarning, match=undescribed):
        registry = {table["name"]: table for table in bdc.get_cache_registry()["tables"]}
    assert list(registry) == sorted(TABLES)
    for name in deleted:  # the declaration's entry: the same description and columns, no build manifest
        assert {k: v for k, v in registry[name].items() if k != "location"} == {
            k: v for k, v in published[name].items() if k not in ("location", "build")
        }
    assert registry["platform_fib"]["location"] == f"{root}/{VERSION}/platform_fib.pqt"
    assert {name: registry[name] for name in registry if name not in deleted} == {
        name: published[name] for name in published if name not in deleted
    }
    with pytest.warns(UserWarning, match=undescribed):
        info = bdc.cache_info("quality_control")
    assert info["location"] == f"{root}/{VERSION}/qc/"
    assert (info["rows"], info["built_at"], info["partitions"]) == (None, None, None)
    assert len(bdc.quality_control(None)) == published["quality_control"]["build"]["row_count"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a" * 129, "a b", "x.pqt", "é", "..", None, 7])
def test_hostile_custom_names_are_rejected(scratch_root, name):
    with pytest.raises(ValueError, match=f"custom table name {name!r}"):
        bdc.custom(name, pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="custom table name"):
        bdc.custom(name)
    assert sorted(p.name for p in Path(scratch_root, VERSION).iterdir()) == ["asset_basics.pqt"]


def test_custom_name_limits_and_missing_custom_table(scratch_root):
    bdc.custom("a" * 128, pd.DataFrame({"a": [1]}))
    assert Path(scratch_root, VERSION, "custom", "a" * 128 + ".pqt").is_file()
    with pytest.raises(bdc.TableNotFoundError, match="custom/nothing_here"):
        bdc.custom("nothing_here")
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        bdc.custom("x", [1, 2])


def test_unknown_table_name(scratch_root):
    with pytest.raises(bdc.TableNotFoundError, match="unknown table 'nope'"):
        bdc.read_table("nope")


# -- older version folders ---------------------------------------------------------------------


def test_older_version_folder_is_upgraded_on_read(tmp_path):
    """A folder written by an older pipeline: other names, types and column sets."""
    root = tmp_path / "cache"
    old = root / "bdc-v0.0"
    (old / "qc" / "subject_id=007").mkdir(parents=True)
    pq.write_table(
        pa.table({
            "object_type": ["Metric", "Metric"],
            "name": ["m1", "m2"],
            "modality": ["ecephys", "ecephys"],
            "stage": ["Raw data", "Raw data"],
            "value": ["1", None],
            "status_history": ["Pass", "Fail"],
            "asset_name": ["a1", "a1"],
            "subject_id": pa.array([7, 7], pa.int64()),
            "timestamp": pa.array([1_700_000_000, None], pa.int64()),
        }),
        old / "qc" / "subject_id=007" / "data.pqt",
    )
    (old / "qc" / "subject_id=a%2Fb").mkdir()
    pq.write_table(  # another partition of the same folder, with yet other types
        pa.table({
            "name": ["m3"],
            "status": ["Pending"],
            "asset_name": ["a2"],
            "timestamp": pa.array([pd.Timestamp("2024-05-06 07:08:09.123456789")], pa.timestamp("ns")),
        }),
        old / "qc" / "subject_id=a%2Fb" / "data.pqt",
    )
    pq.write_table(
        pa.table({
            "_id": ["i1"],
            "modalities": ["SPIM, behavior"],
            "subject_id": ["007"],
            "acquisition_start_time": pa.array([pd.Timestamp("2024-01-02T03:04:05Z")], pa.timestamp("ns", tz="UTC")),
            "age": pa.array([12], pa.int32()),
            "name": ["a1"],
        }),
        old / "asset_basics.pqt",
    )
    for version in ("bdc-v0.0", VERSION):
        CacheStore(str(root), version=version).register_version()
    bdc.configure(root=str(root), version="bdc-v0.0")

    qc = bdc.qc("007")
    assert list(qc.columns) == TABLES["quality_control"].column_names
    assert qc["status"].tolist() == ["Pass", "Fail"] and qc["status"].cat.ordered
    assert qc["subject_id"].tolist() == ["007", "007"]
    assert qc["timestamp"].iloc[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert pd.isna(qc["timestamp"].iloc[1])
    both = bdc.quality_control(None)
    assert both["subject_id"].tolist() == ["007", "007", "a/b"]
    assert both["status"].max() == "Fail" and both["timestamp"].iloc[2] == pd.Timestamp("2024-05-06 07:08:09.123456Z")
    basics = bdc.asset_basics()
    assert list(basics.columns) == TABLES["asset_basics"].column_names
    assert basics["modalities"].iloc[0] == ["SPIM", "behavior"]
    assert basics["acquisition_start_time"].iloc[0] == "2024-01-02T03:04:05+00:00"
    assert basics["age"].iloc[0] == 12 and str(basics["age"].dtype) == "Int64"
    assert basics["experimenters"].isna().all() and str(basics["location"].dtype) == "str"
    assert bdc.asset_basics(columns=["name"], filters=[("subject_id", "=", "007")])["name"].tolist() == ["a1"]
    assert bdc.query("select status, typeof(timestamp) t from quality_control order by name")["t"][0].startswith(
        "TIMESTAMP"
    )


# -- configuration -----------------------------------------------------------------------------


def test_environment_configuration(monkeypatch, tmp_path, client_local_cache):
    assert bdc.current_settings().backend == "S3"
    assert bdc.current_settings().root == DEFAULT_ROOTS["S3"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIODATA_CACHE_BACKEND", "local")
    assert bdc.current_settings().root == str(tmp_path / ".biodata-cache")
    shutil.copytree(client_local_cache, tmp_path / ".biodata-cache")
    from_default_folder = bdc.unique_subject_ids()
    bdc.configure(root=client_local_cache)
    assert from_default_folder == bdc.unique_subject_ids()
    bdc.configure()
    monkeypatch.setenv("BIODATA_CACHE_BACKEND", "MEMORY")
    assert bdc.current_settings().root == DEFAULT_ROOTS["MEMORY"]
    genotypes = TABLES["unique_genotypes"]
    CacheStore(DEFAULT_ROOTS["MEMORY"]).write_table(genotypes, genotypes.from_columns({"genotype": ["in memory"]}))
    assert bdc.unique_genotypes() == ["in memory"]
    monkeypatch.setenv("BIODATA_CACHE_ROOT", client_local_cache)
    monkeypatch.setenv("BIODATA_CACHE_VERSION", VERSION)
    monkeypatch.setenv("BIODATA_CACHE_OFFLINE", "true")
    settings = bdc.current_settings()
    assert (settings.root, settings.version, settings.offline) == (client_local_cache, VERSION, True)
    assert len(bdc.asset_basics()) > 0  # offline concerns S3 roots only
    monkeypatch.setenv("BIODATA_CACHE_BACKEND", "ftp")
    with pytest.raises(ValueError, match="cache backend 'FTP' is not one of S3, LOCAL, MEMORY"):
        bdc.current_settings()


def test_configure_overrides_and_resets(monkeypatch, tmp_path):
    monkeypatch.setenv("BIODATA_CACHE_ROOT", str(tmp_path / "from-env"))
    assert bdc.configure(root=str(tmp_path / "from-code"), version="bdc-v0.9").root == str(tmp_path / "from-code")
    assert bdc.configure(offline=True).root == str(tmp_path / "from-env")  # each call replaces the last
    assert bdc.current_settings().version is None
    with pytest.raises(ValueError, match="cache backend"):
        bdc.configure(backend="nope")
    assert bdc.current_settings().offline  # a rejected configure changes nothing


def test_unpublished_installed_version_falls_back_to_the_newest(tmp_path):
    root = tmp_path / "cache"
    for version in ("bdc-v0.0", "bdc-v99.1", "bdc-v99.0"):
        store = CacheStore(str(root), version=version)
        store.write_table(TABLES["unique_genotypes"], TABLES["unique_genotypes"].from_columns({"genotype": [version]}))
        store.register_version()
    bdc.configure(root=str(root))
    versions_file = root / "cache_versions.json"
    versions_file.write_text(json.dumps(["bdc-v0.0", "bdc-v99.1", "bdc-v99.0"]))
    with pytest.warns(UserWarning, match=rf"{VERSION} \(installed biodata-cache .*\).*reading bdc-v99\.1"):
        assert bdc.unique_genotypes() == ["bdc-v99.1"]
    bdc.configure(root=str(root), version="bdc-v0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bdc.unique_genotypes() == ["bdc-v0.0"]


def test_client_never_imports_dagster(client_local_cache):
    script = (
        "import sys\n"
        "sys.modules['dagster'] = None\n"
        "import biodata_cache_client as bdc\n"
        f"bdc.configure(backend='LOCAL', root={client_local_cache!r})\n"
        "print(len(bdc.asset_basics()), len(bdc.qc(bdc.unique_subject_ids()[0]).columns))\n"
        "print(len(bdc.query('select * from platform_qc')))\n"
        "assert not any(m.startswith('dagster') and sys.modules[m] is not None for m in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    basics, qc_columns = result.stdout.split()[:2]
    assert int(basics) > 0 and int(qc_columns) == len(TABLES["quality_control"].columns)
