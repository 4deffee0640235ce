"""Helpers of the table tests (tests/tables/): the fixture records, records in the 2.x layout, QC
metrics, and the types tables.md states."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fixture_records import FIXTURE_RECORDS

from biodata_cache_pipeline.records import normalize_record

# The types tables.md states, the platform_qc platforms and the Neuroglancer link prefix, as the spec writes them.
STRING = pa.string()
STRING_LIST = pa.list_(pa.string())
INT64 = pa.int64()
BOOL = pa.bool_()
UTC = pa.timestamp("us", tz="UTC")
PLATFORMS = ("spim", "fib", "vr", "dynamic_foraging", "slap2")
NG = "https://allen.neuroglass.io/new#!"


def load_fixture(relative: str) -> dict:
    return json.loads((FIXTURE_RECORDS / relative).read_text())


def all_raw() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURE_RECORDS.glob("v*/*.json"))]


def all_records():
    return [normalize_record(raw) for raw in all_raw()]


def v2(name: str, fields: dict[str, Any] | None = None, **top: Any) -> dict:
    """A record in the 2.x layout: `fields` maps dotted paths to values."""
    record: dict[str, Any] = {"_id": f"id-{name}", "name": name, "location": f"s3://aind-open-data/{name}", **top}
    for dotted, value in (fields or {}).items():
        node = record
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return record


def norm(*raws: dict):
    return [normalize_record(r) for r in raws]


def mods(*abbreviations: str) -> list[dict]:
    return [{"abbreviation": a, "name": a} for a in abbreviations]


def metric(name, modality="behavior", stage="Processing", value=None, history=("Pass",), tags=None, **extra):
    m = {
        "object_type": "QC metric",
        "name": name,
        "modality": {"abbreviation": modality, "name": modality} if isinstance(modality, str) else modality,
        "stage": stage,
        "value": value,
        "status_history": [{"status": s, "evaluator": "x", "timestamp": "2025-01-01T00:00:00Z"} for s in history],
    }
    if tags is not None:
        m["tags"] = tags
    m.update(extra)
    return m


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def assert_declared(table: pa.Table, spec) -> None:
    assert table.column_names == spec.column_names
    assert table.schema == spec.schema, (table.schema, spec.schema)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_json(path: Path, content) -> None:
    """A file of an open-data asset folder: text as given, anything else as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
