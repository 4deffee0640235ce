"""Where records come from: a folder of asset folders (`local_folder`) or DocDB (`docdb`), and the
open-data store (`open_data`). Both record sources answer the record snapshot the same way
(`RecordSource`): a listing of keys, then the records of the keys that changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from biodata_cache_pipeline.records import NormalizedRecord


@dataclass
class ChangedRecords:
    """What a source read for one chunk of its listing; a key in neither list is gone."""

    records: list[tuple[str, str | None, NormalizedRecord]] = field(default_factory=list)  # (key, signature, record)
    unchanged: list[str] = field(default_factory=list)  # keys whose signature equals the snapshot's


class RecordSource(Protocol):
    """A picklable description of a record source; `read_changed` runs in worker processes."""

    @property
    def label(self) -> str:
        """Where the records come from (a folder or a collection URL)."""

    def listing(self) -> list[tuple[str, str | None]]:
        """(key, signature or None when only reading the record tells) for every record, in key order."""

    def read_changed(self, entries: Sequence[tuple[str, str | None, str | None]]) -> ChangedRecords:
        """For (key, listed signature, snapshot signature) entries: the records to (re)store."""
