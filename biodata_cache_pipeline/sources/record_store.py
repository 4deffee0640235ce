"""A compact on-disk store of normalised records, so the local source parses each folder once.

Reading a records folder means listing every asset folder, reading its JSON and normalising it.
The local source keeps what it normalised here, keyed by asset folder and the *signature* of the
folder's files (names, sizes, modification times): a folder whose files did not change is read
back from the store (a pickled `NormalizedRecord`, about 1.6 KB) instead of being parsed again.

One SQLite file per records root. Its contents are tied to the code that produced them: a change
to the normaliser or to the folder reader (`records.py`, `sources/local_folder.py`) or another
Python version empties it. Nothing in the store is ever published; deleting it only costs a parse.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from biodata_cache_pipeline import records as _records_module

SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists records (folder text primary key, signature text not null, record blob not null);
"""
PICKLE_PROTOCOL = 5


def code_version() -> str:
    """Identifies the code whose output the store holds (normaliser, folder reader, Python)."""
    from biodata_cache_pipeline.sources import local_folder

    digest = hashlib.sha256(sys.version.encode())
    for module in (_records_module, local_folder):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


class RecordStore:
    """Normalised records of one records root, keyed by folder, valid for one folder signature."""

    def __init__(self, folder: str | os.PathLike, root: str):
        Path(folder).mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(root.encode()).hexdigest()[:16]
        self.path = Path(folder) / f"records-{name}.sqlite"
        self._connection = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._connection.execute("pragma journal_mode=wal")
        self._connection.execute("pragma synchronous=normal")
        self._connection.executescript(SCHEMA)
        version = code_version()
        with self._transaction():
            stored = dict(self._connection.execute("select key, value from meta").fetchall())
            if stored.get("code_version") != version or stored.get("root") != root:
                self._connection.execute("delete from records")
                self._connection.executemany(
                    "insert or replace into meta values (?, ?)", [("code_version", version), ("root", root)]
                )

    def _transaction(self):
        return _Transaction(self._connection)

    def signatures(self) -> dict[str, str]:
        """Folder -> signature of every stored record."""
        return dict(self._connection.execute("select folder, signature from records"))

    def put(self, entries: Iterable[tuple[str, str, object]]) -> None:
        """Store (folder, signature, record) entries, replacing what was there."""
        rows = [(folder, signature, pickle.dumps(record, PICKLE_PROTOCOL)) for folder, signature, record in entries]
        if rows:
            with self._transaction():
                self._connection.executemany("insert or replace into records values (?, ?, ?)", rows)

    def retain(self, folders: Iterable[str]) -> None:
        """Forget the records of folders not in `folders` (asset folders that are gone)."""
        keep = set(folders)
        gone = [(folder,) for folder in self.signatures() if folder not in keep]
        if gone:
            with self._transaction():
                self._connection.executemany("delete from records where folder = ?", gone)

    def scan(self) -> Iterator[tuple[str, str, bytes]]:
        """Every stored (folder, signature, pickled record), in folder order.

        On a connection of its own: in WAL mode it reads one consistent state of the store while
        `put` writes through the main connection.
        """
        connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            yield from connection.execute("select folder, signature, record from records order by folder")
        finally:
            connection.close()

    @staticmethod
    def load(blob: bytes):
        """A record from its stored form."""
        return pickle.loads(blob)

    def record(self, folder: str):
        """The stored record of one folder; KeyError when there is none."""
        row = self._connection.execute("select record from records where folder = ?", (folder,)).fetchone()
        if row is None:
            raise KeyError(f"record store {self.path}: no record for {folder}")
        return pickle.loads(row[0])

    def records(self, folders: Iterable[str]) -> Iterator:
        """The stored records of `folders`, in folder order; a folder missing from the store raises."""
        wanted = sorted(set(folders))
        cursor = self._connection.execute("select folder, record from records order by folder")
        stored = iter(cursor)
        for folder in wanted:
            for found, blob in stored:
                if found == folder:
                    yield pickle.loads(blob)
                    break
                if found > folder:
                    raise KeyError(f"record store {self.path}: no record for {folder}")
            else:
                raise KeyError(f"record store {self.path}: no record for {folder}")

    def close(self) -> None:
        self._connection.close()


class _Transaction:
    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("begin immediate")

    def __exit__(self, kind, value, traceback) -> None:
        self.connection.execute("commit" if kind is None else "rollback")
