"""Build history through the real pipeline, three builds of a hand-made corpus, on a local root and on
an S3 bucket with versioning (moto_server): history, as_of, build=, diff, provenance and prune; and
the content-addressed copies of an S3 bucket without versioning and of the memory store."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import boto3
import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance
from handmade_corpus import asset_name, remove_record, use_local_environment, write_corpus, write_record

import biodata_cache_client as bdc
from biodata_cache_client.layout import BUILD_ID, HISTORY_OBJECTS_FOLDER, version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.build_history import Retention, prune, record_build
from biodata_cache_pipeline.cli import main as pipeline_main, materialize_all
from biodata_cache_pipeline.storage import CacheStore

VERSION = version_folder()
SUBJECTS = ["1", "2", "3", "4", "5", "6"]  # enough that removing one subject passes the publish guard
NEW = "7"
GENOTYPES = TABLES["unique_genotypes"]
PLATFORM_QC = TABLES["platform_qc"]
ROW = {"asset_name": "a", "tag": "t", "status": "Pass", "timestamp": None, "instrument_id_normalized": None,
       "experimenters_normalized": None}
pytestmark = pytest.mark.usefixtures("client_settings")


@dataclass
class Built:
    """What the client read right after each build."""

    basics: pd.DataFrame
    qc: pd.DataFrame
    qc_count: int
    history: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Cache:
    root: str
    kind: str
    builds: list[Built]
    history_after_rebuild: dict[str, list[str]]


def _read_everything() -> Built:
    tables = ("asset_basics", "quality_control", "platform_qc", "unique_subject_ids")
    return Built(
        basics=bdc.asset_basics(),
        qc=bdc.qc(None),
        qc_count=int(bdc.query("select count(*) n from quality_control")["n"][0]),
        history={table: bdc.history(table)["build_id"].tolist() for table in tables},
    )


def _three_builds(tmp_path: Path, root: str, kind: str, env: dict[str, str]) -> Cache:
    samples = tmp_path / "samples"
    write_corpus(samples, SUBJECTS)
    builds = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_local_environment(monkeypatch, samples, Path("unused"))
        for name, value in {**env, "BIODATA_CACHE_ROOT": root}.items():
            monkeypatch.setenv(name, value)
        bdc.configure(root=root)

        def build() -> None:
            assert not materialize_all(DagsterInstance.ephemeral(), say=lambda _: None).failures

        build()
        builds.append(_read_everything())
        # build 2: a record changes (new _last_modified, one more QC metric), a new subject appears
        write_record(samples, asset_name("1", 0), "1", last_modified="2025-06-01T00:00:00Z", metrics=3)
        write_record(samples, asset_name(NEW, 0), NEW)
        build()
        builds.append(_read_everything())
        # build 3: the new subject's record is gone again (its QC partition is deleted)
        remove_record(samples, asset_name(NEW, 0))
        build()
        builds.append(_read_everything())
        build()  # nothing changed: no new build
        rebuilt = _read_everything().history
        bdc.configure()
    return Cache(root, kind, builds, rebuilt)


@pytest.fixture(scope="module", params=["local", "s3"])
def cache(request, tmp_path_factory) -> Cache:
    tmp_path = tmp_path_factory.mktemp(f"history-{request.param}")
    if request.param == "local":
        return _three_builds(tmp_path, str(tmp_path / "cache"), "local", {})
    env = request.getfixturevalue("moto_s3_env")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        bucket = f"history-{uuid.uuid4().hex[:12]}"
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        return _three_builds(tmp_path, f"s3://{bucket}/data-asset-cache", "s3", env)


@pytest.fixture
def reading(cache, request, monkeypatch) -> Cache:
    """The client configured for `cache` (with the moto environment for S3)."""
    if cache.kind == "s3":
        for name, value in request.getfixturevalue("moto_s3_env").items():
            monkeypatch.setenv(name, value)
    bdc.configure(root=cache.root)
    return cache


def _ids(cache: Cache, table: str) -> list[str]:
    return cache.builds[-1].history[table]


def test_each_change_is_a_build_and_an_unchanged_rebuild_is_not(reading):
    basics = _ids(reading, "asset_basics")
    assert [b.history["asset_basics"] for b in reading.builds] == [basics[:1], basics[:2], basics[:3]]
    assert len(_ids(reading, "quality_control")) == 3
    assert len(_ids(reading, "platform_qc")) == 1, "its objects never changed"
    assert reading.history_after_rebuild == reading.builds[-1].history
    assert all(BUILD_ID.fullmatch(i) for i in basics) and basics == sorted(basics)

    history = bdc.history("asset_basics")
    assert history.columns.tolist() == ["build_id", "built_at", "rows", "current"]
    assert history["rows"].tolist() == [len(b.basics) for b in reading.builds] == [12, 13, 12]
    assert history["current"].tolist() == [False, False, True]
    assert history["built_at"].is_monotonic_increasing and str(history["built_at"].dt.tz) == "UTC"
    assert bdc.get_cache_registry()["tables"][0]["build"]["build_id"] == basics[-1]


def test_build_and_as_of_read_what_was_read_after_each_build(reading):
    basics_ids, qc_ids = _ids(reading, "asset_basics"), _ids(reading, "quality_control")
    qc_history = bdc.history("quality_control")
    for n, built in enumerate(reading.builds):
        pd.testing.assert_frame_equal(bdc.asset_basics(build=basics_ids[n]), built.basics)
        pd.testing.assert_frame_equal(bdc.read_table("asset_basics", build=basics_ids[n]), built.basics)
        pd.testing.assert_frame_equal(bdc.qc(None, build=qc_ids[n]), built.qc)
        as_of = qc_history["built_at"][n]
        pd.testing.assert_frame_equal(bdc.qc(None, as_of=as_of), built.qc)
        pd.testing.assert_frame_equal(bdc.qc(None, as_of=as_of.isoformat()), built.qc)
        assert bdc.query("select count(*) n from quality_control", build=qc_ids[n])["n"][0] == built.qc_count
        assert bdc.query("select count(*) n from quality_control", as_of=as_of)["n"][0] == built.qc_count
    # the subject added by build 2 and removed by build 3: its partition is read from build 2
    assert bdc.qc(NEW, build=qc_ids[1])["subject_id"].unique().tolist() == [NEW]
    with pytest.warns(UserWarning, match="no partition for subject_id"):
        assert bdc.qc(NEW, build=qc_ids[2]).empty
    # a date is the end of that day: today's newest build, which is the current one
    today = bdc.history("asset_basics")["built_at"].iloc[-1].date().isoformat()
    pd.testing.assert_frame_equal(bdc.asset_basics(as_of=today), reading.builds[-1].basics)
    # another table's build id: this table as of that build's time
    first_basics = bdc.query("select count(*) n from asset_basics", build=qc_ids[0])["n"][0]
    assert first_basics == len(reading.builds[0].basics)
    # columns and filters apply to a build as to the published table
    old = bdc.asset_basics(columns=["_id", "subject_id"], filters=[("subject_id", "=", NEW)], build=basics_ids[1])
    assert old["subject_id"].tolist() == [NEW] and old.columns.tolist() == ["_id", "subject_id"]
    # the published paths hold the current build only, as readers that build paths by hand expect
    published = duckdb.sql(
        f"select count(*) from read_parquet('{reading.root}/{VERSION}/qc/*/data.pqt', hive_partitioning=true, "
        "hive_types={'subject_id': VARCHAR})"
    ).fetchone()[0] if reading.kind == "local" else reading.builds[-1].qc_count
    assert published == len(reading.builds[-1].qc)


def test_manifest_names_each_object_by_checksum_and_s3_version(reading):
    manifests = _manifests(reading, "quality_control")
    first, second, third = manifests
    assert [o["partition"] for o in second["objects"]] == [*SUBJECTS, NEW]
    assert [o["partition"] for o in third["objects"]] == SUBJECTS
    unchanged = {o["path"]: o for o in first["objects"]}["qc/subject_id=3/data.pqt"]
    assert unchanged == {o["path"]: o for o in third["objects"]}["qc/subject_id=3/data.pqt"]
    for entry in second["objects"]:
        data = _object_bytes(reading, entry)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
        assert (entry["version_id"] is not None) == (reading.kind == "s3")


def test_diff_equals_the_set_difference(reading):
    first, _, third = (built.basics for built in reading.builds)
    ids = _ids(reading, "asset_basics")
    change = bdc.diff("asset_basics", ids[0], ids[1])
    assert change.key == ["_id"]
    before, after = reading.builds[0].basics.set_index("_id"), reading.builds[1].basics.set_index("_id")
    assert set(change.added["_id"]) == set(after.index) - set(before.index) == {f"id-{asset_name(NEW, 0)}"}
    assert set(change.removed["_id"]) == set(before.index) - set(after.index) == set()
    common = sorted(set(before.index) & set(after.index))
    differing = {i for i in common if not before.loc[i].astype(str).equals(after.loc[i].astype(str))}
    assert set(change.changed["_id"]) == differing == {f"id-{asset_name('1', 0)}"}
    assert change.changed_before["_last_modified"].tolist() == ["2025-01-01T00:00:00Z"]
    assert change.changed["_last_modified"].tolist() == ["2025-06-01T00:00:00Z"]
    assert bdc.diff("asset_basics", ids[0]).added.empty, "build 3 removed what build 2 added"
    assert len(bdc.diff("asset_basics", ids[0]).changed) == 1 and len(third) == len(first)

    qc_ids = _ids(reading, "quality_control")
    qc_change = bdc.diff("quality_control", qc_ids[0], qc_ids[1])  # no declared key: whole rows
    assert qc_change.key == [] and qc_change.changed.empty
    rows = lambda frame: Counter(tuple(map(str, row)) for row in frame.itertuples(index=False))  # noqa: E731
    old_rows, new_rows = rows(reading.builds[0].qc), rows(reading.builds[1].qc)
    assert rows(qc_change.added) == new_rows - old_rows and rows(qc_change.removed) == old_rows - new_rows
    assert set(qc_change.added["subject_id"]) == {"1", NEW}


def test_provenance_lists_each_table_and_build_read(reading):
    basics_ids, qc_ids = _ids(reading, "asset_basics"), _ids(reading, "quality_control")
    bdc.asset_basics()
    start = datetime.now(timezone.utc)
    bdc.asset_basics(build=basics_ids[0])
    bdc.qc(None)
    bdc.qc(None)
    read = [(p["table"], p["build_id"], p["root"]) for p in bdc.provenance(since=start)]
    root = reading.root.rstrip("/")
    assert read == [("asset_basics", basics_ids[0], root), ("quality_control", qc_ids[-1], root)]
    assert ("asset_basics", basics_ids[-1], root) in [(p["table"], p["build_id"], p["root"]) for p in bdc.provenance()]
    entry = next(p for p in bdc.provenance(since=start) if p["build_id"] == basics_ids[0])
    assert entry["version"] == VERSION and entry["built_at"] == str(bdc.history("asset_basics")["built_at"][0].isoformat())
    with pytest.raises(ValueError, match="is not a datetime"):
        bdc.provenance(since="yesterday")


def test_bad_selections_are_one_line_errors(reading):
    first = bdc.history("asset_basics")["built_at"][0]
    cases = [
        (lambda: bdc.asset_basics(build="20000101T000000.000000Z-00000000"), bdc.BuildNotFoundError, "no build 2000"),
        (lambda: bdc.asset_basics(build="yesterday"), ValueError, "is not a build id"),
        (lambda: bdc.asset_basics(as_of="2000-01-01"), bdc.BuildNotFoundError, "its first build is"),
        (lambda: bdc.asset_basics(as_of=first - pd.Timedelta(seconds=1)), bdc.BuildNotFoundError, "no build at or"),
        (lambda: bdc.qc(None, as_of="last tuesday"), ValueError, "is not a date or a time"),
        (lambda: bdc.query("select 1 from asset_basics", as_of="2026-13-01"), ValueError, "is not a date or a time"),
        (lambda: bdc.asset_basics(as_of="2026-01-01", build=_ids(reading, "asset_basics")[0]), ValueError, "not both"),
        (lambda: bdc.diff("asset_basics", "20000101T000000.000000Z-00000000"), bdc.BuildNotFoundError, "no build"),
        (lambda: bdc.diff("asset_basics", _ids(reading, "quality_control")[0]), bdc.BuildNotFoundError, "lists its 3"),
        (lambda: bdc.history("no_such_table"), bdc.TableNotFoundError, "unknown table"),
    ]
    for call, error, text in cases:
        with pytest.raises(error, match=text) as raised:
            call()
        assert "\n" not in str(raised.value), str(raised.value)


def test_builds_through_the_local_copy_and_offline(reading, tmp_path, monkeypatch):
    """On S3 a build's object versions are kept in the local copy by checksum and read offline from
    there; a local root ignores both settings."""
    ids = _ids(reading, "quality_control")
    copy = tmp_path / "copy"
    bdc.configure(root=reading.root, local_copy=str(copy))
    assert bdc.history("quality_control")["build_id"].tolist() == ids
    pd.testing.assert_frame_equal(bdc.qc(None, build=ids[1]), reading.builds[1].qc)
    if reading.kind == "s3":
        kept = sorted(p.stem for p in copy.rglob(f"{HISTORY_OBJECTS_FOLDER}/*.pqt"))
        assert kept == sorted({o["sha256"] for o in _manifests(reading, "quality_control")[1]["objects"]})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: offline must not need S3
    bdc.configure(root=reading.root, local_copy=str(copy), offline=True)
    pd.testing.assert_frame_equal(bdc.qc(None, build=ids[1]), reading.builds[1].qc)
    if reading.kind == "s3":
        with pytest.raises(bdc.CacheReadError, match="is not in the local copy; read it once online first"):
            bdc.qc(None, build=ids[0])


def test_prune_dry_run_then_prune_keeps_the_current_builds(reading, capsys, monkeypatch):
    """Last in this module: it deletes the older builds the other tests read."""
    monkeypatch.setenv("BIODATA_CACHE_ROOT", reading.root)
    basics = _ids(reading, "asset_basics")
    objects_before = _stored_objects(reading)
    assert pipeline_main(["prune", "--dry-run", "--keep-builds", "1", "--keep-days", "0"]) == 0
    said = capsys.readouterr().out
    assert f"would delete build asset_basics {basics[0]}" in said and f"build asset_basics {basics[1]}" in said
    assert f"build asset_basics {basics[2]}" not in said
    assert _stored_objects(reading) == objects_before and bdc.history("asset_basics")["build_id"].tolist() == basics

    assert pipeline_main(["prune", "--keep-builds", "1", "--keep-days", "30"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "nothing to delete", "every build is younger than 30 days"

    assert pipeline_main(["prune", "--keep-builds", "1", "--keep-days", "0"]) == 0
    assert "deleting build asset_basics" in capsys.readouterr().out
    assert bdc.history("asset_basics")["build_id"].tolist() == basics[-1:]
    pd.testing.assert_frame_equal(bdc.asset_basics(build=basics[-1]), reading.builds[-1].basics)
    pd.testing.assert_frame_equal(bdc.asset_basics(), reading.builds[-1].basics)
    pd.testing.assert_frame_equal(bdc.qc(None), reading.builds[-1].qc)
    with pytest.raises(bdc.BuildNotFoundError, match=f"no build {basics[0]}"):
        bdc.asset_basics(build=basics[0])
    current = [entry for table in TABLES for manifest in _manifests(reading, table) for entry in manifest["objects"]]
    assert _stored_objects(reading) == {_stored_name(reading, entry) for entry in current}, "what the current builds name"

    assert pipeline_main(["prune", "--keep-builds", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: keep_builds 0 must be a whole number of at least 1 (the current build)"]


@pytest.fixture(params=["s3-unversioned", "memory"])
def copies_root(request) -> str:
    if request.param == "memory":
        return f"memory://history-{uuid.uuid4().hex[:12]}/data-asset-cache"
    return request.getfixturevalue("fresh_root")


def test_without_bucket_versioning_builds_are_kept_as_copies(copies_root, capsys):
    """An S3 bucket without versioning (and the memory store) keep each build's objects once by checksum."""
    store = CacheStore(copies_root)
    written = [["a"], ["a", "b"], ["a"]]  # the third build has the first one's bytes
    ids = []
    for genotypes in written:
        store.write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": genotypes}))
        ids.append(record_build(store, GENOTYPES, len(genotypes)))
    assert record_build(store, GENOTYPES, 1) == ids[-1]
    bdc.configure(root=copies_root)
    assert [bdc.unique_genotypes(build=build_id) for build_id in ids] == written
    copies = store.storage.list_files(f"{store.version}/{HISTORY_OBJECTS_FOLDER}")
    assert len(copies) == 2, "one copy per distinct content"

    prune(store, Retention(keep_builds=1, keep_days=0), say=print)
    said = capsys.readouterr().out
    assert said.count("deleting build unique_genotypes") == 2 and said.count("deleting copy of") == 1
    assert bdc.history("unique_genotypes")["build_id"].tolist() == ids[-1:]
    assert bdc.unique_genotypes(build=ids[-1]) == ["a"] and bdc.unique_genotypes() == ["a"]
    assert len(store.storage.list_files(f"{store.version}/{HISTORY_OBJECTS_FOLDER}")) == 1


def test_partitions_with_the_same_bytes_share_one_copy(tmp_path, capsys):
    store = CacheStore(str(tmp_path / "cache"))
    platforms = PLATFORM_QC.static_partitions[:2]
    builds = []
    for status in (None, "Pass"):  # first every partition is empty (the same bytes), then each has a row
        rows = [] if status is None else [dict(ROW, status=status)]
        for platform in platforms:
            store.write_partition(PLATFORM_QC, platform, PLATFORM_QC.from_rows(rows))
        store.write_partition_state(PLATFORM_QC, {p: {"rows": len(rows), "fingerprint": None} for p in platforms})
        builds.append(record_build(store, PLATFORM_QC, 0))
        store = CacheStore(str(tmp_path / "cache"))  # as the IO manager: a store per output
    first, second = (json.loads((tmp_path / "cache" / VERSION / "_builds" / "platform_qc" / f"{b}.json").read_text())
                     for b in builds)
    assert len({o["sha256"] for o in first["objects"]}) == 1 and len({o["sha256"] for o in second["objects"]}) == 1
    bdc.configure(root=str(tmp_path / "cache"))
    assert bdc.platform_qc(list(platforms), build=builds[0]).empty
    assert sorted(bdc.platform_qc(list(platforms), build=builds[1])["platform"]) == sorted(platforms)

    prune(store, Retention(keep_builds=1, keep_days=0))
    assert capsys.readouterr().out.count("deleting copy of") == 1
    assert len(list((tmp_path / "cache" / VERSION / HISTORY_OBJECTS_FOLDER).iterdir())) == 1


def test_remove_old_versions_never_the_current_one(tmp_path, capsys, monkeypatch):
    root = tmp_path / "cache"
    for folder in ("bdc-v0.0", VERSION, "bdc-v99.0"):
        (root / folder / "custom").mkdir(parents=True)
        (root / folder / "custom" / "t.pqt").write_bytes(b"x")
    monkeypatch.setenv("BIODATA_CACHE_ROOT", str(root))
    assert pipeline_main(["prune", "--dry-run", "--remove-old-versions"]) == 0
    assert "would delete old version folder" in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == sorted(["bdc-v0.0", VERSION, "bdc-v99.0"])
    assert pipeline_main(["prune", "--remove-old-versions"]) == 0
    assert sorted(p.name for p in root.iterdir()) == sorted([VERSION, "bdc-v99.0"])


# -- helpers -------------------------------------------------------------------------------------


def _manifests(cache: Cache, table: str) -> list[dict]:
    if cache.kind == "local":
        folder = Path(cache.root) / VERSION / "_builds" / table
        return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    bucket, prefix = _bucket(cache)
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{VERSION}/_builds/{table}/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()) for item in sorted(listed, key=lambda i: i["Key"])]


def _object_bytes(cache: Cache, entry: dict) -> bytes:
    if cache.kind == "local":
        return (Path(cache.root) / VERSION / HISTORY_OBJECTS_FOLDER / f"{entry['sha256']}.pqt").read_bytes()
    bucket, prefix = _bucket(cache)
    key = f"{prefix}/{VERSION}/{entry['path']}"
    return boto3.client("s3").get_object(Bucket=bucket, Key=key, VersionId=entry["version_id"])["Body"].read()


def _stored_name(cache: Cache, entry: dict) -> tuple:
    return (entry["sha256"],) if cache.kind == "local" else (entry["path"], entry["sha256"], entry["version_id"])


def _stored_objects(cache: Cache) -> set[tuple]:
    """Where table bytes are kept: (path, sha256, version id) of every table object version (S3),
    (sha256,) of every history copy (local)."""
    if cache.kind == "local":
        return {(path.stem,) for path in (Path(cache.root) / VERSION / HISTORY_OBJECTS_FOLDER).iterdir()}
    bucket, prefix = _bucket(cache)
    s3 = boto3.client("s3")
    stored = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"{prefix}/{VERSION}/"):
        for version in page.get("Versions", []):
            path = version["Key"].removeprefix(f"{prefix}/{VERSION}/")
            if path.endswith(".pqt") and not path.startswith(("_", "custom/")):
                data = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
                stored.add((path, hashlib.sha256(data).hexdigest(), version["VersionId"]))
    return stored


def _bucket(cache: Cache) -> tuple[str, str]:
    bucket, _, prefix = cache.root.removeprefix("s3://").partition("/")
    return bucket, prefix


def test_a_cache_published_before_build_history_gets_its_first_manifests_unchanged(tmp_path):
    """Tables published without build manifests (an older cache) get one on the next build even when
    nothing changed, so every table has a build to name and read."""
    samples, root = tmp_path / "samples", str(tmp_path / "cache")
    write_corpus(samples, SUBJECTS)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_local_environment(monkeypatch, samples, Path("unused"))
        monkeypatch.setenv("BIODATA_CACHE_ROOT", root)
        bdc.configure(root=root)
        assert not materialize_all(DagsterInstance.ephemeral(), say=lambda _: None).failures
        version = Path(root) / VERSION
        for fragment in (version / "cache_registry").glob("*.json"):  # as the code before build history wrote them
            entry = json.loads(fragment.read_text())
            del entry["build"]["build_id"]
            fragment.write_text(json.dumps(entry))
        for manifests in (version / "_builds").iterdir():
            for manifest in manifests.iterdir():
                manifest.unlink()
        assert all(bdc.history(name).empty for name in TABLES)

        assert not materialize_all(DagsterInstance.ephemeral(), say=lambda _: None).failures
        assert {name: len(bdc.history(name)) for name in TABLES} == {name: 1 for name in TABLES}
        assert bdc.qc(None, build=bdc.history("quality_control")["build_id"][0]).equals(bdc.qc(None))
