"""Records as record snapshot rows, for the tables built from snapshot rows with Arrow compute."""

import pyarrow as pa

from biodata_cache_pipeline.records import NormalizedRecord
from biodata_cache_pipeline.snapshot import to_batch


def snapshot_rows(records: list[NormalizedRecord]) -> pa.Table:
    """The rows a snapshot holds for `records`, keyed in the order given."""
    return pa.Table.from_batches([to_batch((f"{i:08d}", None, record) for i, record in enumerate(records))])
