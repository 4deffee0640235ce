"""Time travel over the cache: a table's builds, what changed between two, and what this process read.

    bdc.history("asset_basics")                    # build_id, built_at, rows, current
    bdc.asset_basics(as_of="2026-11-30")           # the newest build at or before the end of that day
    bdc.asset_basics(build="20261130T221500.123456Z-1a2b3c4d")
    bdc.query("select count(*) from quality_control", as_of="2026-11-30")
    bdc.diff("asset_basics", a, b)                 # rows added, removed, changed by key
    bdc.provenance()                               # every table and build read, to keep next to a figure

The builds are those of the selected version folder (see `builds` for what selects which build).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from biodata_cache_client.builds import BuildNotFoundError, Selection, build_ids, manifest, provenance, selected
from biodata_cache_client.frames import read_schema, to_frame
from biodata_cache_client.layout import build_time
from biodata_cache_client.reader import current_reader, table_spec

__all__ = ["BuildDiff", "diff", "history", "provenance"]


def history(table: str) -> pd.DataFrame:
    """The recorded builds of `table`, oldest first: build_id, built_at (UTC), rows, current."""
    spec = table_spec(table)
    reader = current_reader()
    version = reader.version()
    ids = build_ids(reader, spec.name, version)
    manifests = [manifest(reader, spec.name, version, build_id) for build_id in ids]
    return pd.DataFrame(
        {
            "build_id": pd.Series(ids, dtype=object),
            "built_at": pd.Series([build_time(build_id) for build_id in ids], dtype="datetime64[us, UTC]"),
            "rows": pd.Series([m["row_count"] for m in manifests], dtype="Int64"),
            "current": pd.Series([build_id == ids[-1] for build_id in ids], dtype=bool),
        }
    )


@dataclass(frozen=True)
class BuildDiff:
    """Rows of build `b` not in build `a` (`added`), of `a` not in `b` (`removed`), and rows whose
    key is in both with other values (`changed`: as in `b`; `changed_before`: as in `a`).
    `key` is empty for a table without declared unique columns: rows are then compared whole."""

    table: str
    a: str
    b: str
    key: list[str]
    added: pd.DataFrame
    removed: pd.DataFrame
    changed: pd.DataFrame
    changed_before: pd.DataFrame

    def __repr__(self) -> str:
        by = f"by {', '.join(self.key)}" if self.key else "whole rows"
        return (
            f"BuildDiff({self.table} {self.a} -> {self.b}, {by}: {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.changed)} changed)"
        )


def diff(table: str, a: str, b: str | None = None) -> BuildDiff:
    """What changed in `table` from build `a` to build `b` (default: the current build), by its key:
    its declared unique columns (with the partition key of a partitioned table), else whole rows."""
    spec = table_spec(table)
    reader = current_reader()
    version = reader.version()
    ids = build_ids(reader, spec.name, version)
    b = b if b is not None or not ids else ids[-1]
    unknown = [build for build in (a, b) if build not in ids]
    if unknown:
        known = f"its {len(ids)} builds" if ids else "no builds: there is nothing to compare"
        raise BuildNotFoundError(
            f"table {spec.name} has no build {unknown[0]} in version folder {version} of cache root "
            f"{reader.source.description}; bdc.history({spec.name!r}) lists {known}"
        )
    before, after = (_rows_at(spec, reader, build) for build in (a, b))
    key = [*([spec.partition_key] if spec.partitioned and spec.unique else []), *spec.unique]
    if key:
        old = {_key(row, key): row for row in before}
        new = {_key(row, key): row for row in after}
        added = [row for k, row in new.items() if k not in old]
        removed = [row for k, row in old.items() if k not in new]
        changed = [k for k, row in new.items() if k in old and _hashable(row) != _hashable(old[k])]
        pairs = ([new[k] for k in changed], [old[k] for k in changed])
    else:
        old, new = Counter(map(_hashable, before)), Counter(map(_hashable, after))
        added = _take(after, new - old)
        removed = _take(before, old - new)
        pairs = ([], [])
    def frame(rows: list[dict]) -> pd.DataFrame:
        return to_frame(pa.Table.from_pylist(rows, schema=read_schema(spec)), spec)

    return BuildDiff(spec.name, a, b, key, frame(added), frame(removed), frame(pairs[0]), frame(pairs[1]))


def _rows_at(spec, reader, build: str) -> list[dict]:
    with selected(Selection.of(build=build)):
        return reader.read(spec).to_pylist()


def _key(row: dict, key: list[str]) -> tuple:
    return tuple(_hashable(row[column]) for column in key)


def _hashable(value):
    """A value (or row) that compares by content: lists as tuples, NaN equal to NaN."""
    if isinstance(value, dict):
        return tuple((name, _hashable(item)) for name, item in value.items())
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def _take(rows: list[dict], counts: Counter) -> list[dict]:
    """The rows whose content `counts` lists, as many times as it counts them, in table order."""
    taken = []
    for row in rows:
        if counts[_hashable(row)] > 0:
            counts[_hashable(row)] -= 1
            taken.append(row)
    return taken
