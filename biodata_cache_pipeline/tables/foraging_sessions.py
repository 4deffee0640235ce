"""foraging_sessions: the dynamic-foraging session table, typed, with normalised trainers."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.schema.declaration import INT64, STRING
from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS
from biodata_cache_pipeline.names import normalize_name


# Columns computed here rather than read from the source.
_DERIVED = {"trainer_normalized"}
# Columns computed from others when the source lacks them.
_FALLBACK = {"session"}


def _column(source: pa.Table, name: str, type_: pa.DataType, warnings: list[str]) -> pa.ChunkedArray:
    if name not in source.column_names:
        if name not in _FALLBACK:
            warnings.append(f"source lacks column {name}: written as nulls")
        return pa.chunked_array([pa.nulls(len(source), type_)])
    column = source[name]
    if column.type == type_:
        return column
    try:
        return column.cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        warnings.append(f"column {name} ({column.type}) cannot be read as {type_}: written as nulls ({error})")
        return pa.chunked_array([pa.nulls(len(source), type_)])


def _session_rank(subject_ids: list, dates: list, suffixes: list) -> list[int]:
    """1-based rank of (session_date, nwb_suffix) within each subject."""
    order = sorted(
        range(len(subject_ids)),
        key=lambda i: (subject_ids[i] or "", dates[i] or "", suffixes[i] if suffixes[i] is not None else -1),
    )
    ranks = [0] * len(order)
    previous, rank = object(), 0
    for i in order:
        rank = rank + 1 if subject_ids[i] == previous else 1
        previous = subject_ids[i]
        ranks[i] = rank
    return ranks


def build_foraging_sessions(source: pa.Table) -> tuple[pa.Table, list[str]]:
    """The declared table from the source session table, plus warnings about what it lacked."""
    warnings: list[str] = []
    columns = {
        c.name: _column(source, c.name, c.type, warnings) for c in FORAGING_SESSIONS.columns if c.name not in _DERIVED
    }
    trainers = columns["trainer"].to_pylist()
    columns["trainer_normalized"] = pa.chunked_array(
        [pa.array([normalize_name(t) if t else "" for t in trainers], STRING)]
    )
    if "session" not in source.column_names:
        columns["session"] = pa.chunked_array([pa.array(
            _session_rank(
                columns["subject_id"].to_pylist(),
                columns["session_date"].to_pylist(),
                columns["nwb_suffix"].to_pylist(),
            ),
            INT64,
        )])
    table = pa.table({name: columns[name] for name in FORAGING_SESSIONS.column_names})
    order = pc.sort_indices(
        table, sort_keys=[(name, "ascending", "at_end") for name in ("subject_id", "session_date", "nwb_suffix")]
    )
    return FORAGING_SESSIONS.conform(table.take(order).combine_chunks()), warnings
