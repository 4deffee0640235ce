"""A loopback DocDB stand-in: the DocDB REST contract over a mongomock collection (tests, demos).

    GET  /{version}/{database}/{collection}/find?filter=&projection=&sort=&limit=&skip=
    POST /{version}/{database}/{collection}/aggregate        body: the pipeline (JSON array)
    GET  /{version}/{database}/{collection}/count_documents?filter=

Queries run on mongomock (filter, projection, sort, skip, limit, aggregation pipelines), except
that a `find` projection including or excluding fields by path is applied by `_project`, after the
sort, skip and limit, as MongoDB applies it through arrays (mongomock fails on arrays holding
scalars or nested arrays); projection operators such as `$slice` stay with mongomock. The server
listens on 127.0.0.1 only, in a daemon thread: `with DocDbStandIn(records) as server:` starts and
stops it. `max_batch` caps the documents one `find` returns, as the real API returns fewer than
asked for large payloads; `fail(count, status, after)` makes requests fail with an HTTP status, a
dropped connection or a wrong empty answer; `mutate(change, after)` changes the collection
between two requests. `MetadataDbClient` reaches it through the session made by
`sources.docdb.docdb_session(host, loopback_port=server.port)`.

Demo, with the pipeline's prod resources reading from it:

    python tests/docdb_standin.py --records .biodata-sample --port 8765
    BIODATA_CACHE_ENV=prod BIODATA_DOCDB_LOOPBACK_PORT=8765 BIODATA_OPEN_DATA_ROOT=.biodata-sample \\
      BIODATA_FORAGING_SESSIONS=.biodata-sample/_foraging/session_table.parquet \\
      BIODATA_CACHE_ROOT=/tmp/demo-cache biodata-cache-pipeline materialize
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import mongomock

from biodata_cache_pipeline.sources.docdb import DEFAULT_COLLECTION, DEFAULT_DATABASE, DEFAULT_VERSION
from biodata_cache_pipeline.sources.local_folder import LocalFolderRecords

DROP = None  # `fail(status=DROP)`: close the connection without an answer
EMPTY = "empty"  # `fail(status=EMPTY)`: answer 200 with `[]`, whatever was asked
_LEAF = True  # where a projected path ends, in the tree of `_projection_tree`
_MISSING = object()  # an inclusion's result for a scalar where the path goes on: no field


def _projection_tree(spec: dict) -> tuple[dict, bool]:
    """(the paths of the projection `spec` as a tree of field names, inclusion?); a `ValueError`
    where MongoDB rejects it (inclusion mixed with exclusion, a path inside another). `_id` is
    in the tree of an inclusion unless `spec` has `_id: 0`."""
    fields = {path: bool(value) for path, value in spec.items()}
    keep_id = fields.pop("_id", True)
    include = any(fields.values()) if fields else keep_id
    kinds = {True: "inclusion", False: "exclusion"}
    for path, value in fields.items():
        if value != include:
            raise ValueError(f"Cannot do {kinds[value]} on field {path} in {kinds[include]} projection")
    if keep_id == include:
        fields["_id"] = include
    tree: dict = {}
    for path in fields:
        node = tree
        *parents, last = path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
            if node is _LEAF:
                raise ValueError(f"Path collision at {path}")
        if last in node:
            raise ValueError(f"Path collision at {path}")
        node[last] = _LEAF
    return tree, include


def _project(value, tree: dict, include: bool):
    """`value` under the projection `tree`, as MongoDB projects it (the manual's "Project Fields to
    Return from Query"; mongodb/mongo jstests/core/projection_semantics.js).

    A path applies to each element of an array on its way: sub-documents are projected, nested
    arrays are recursed into and keep their nesting, scalars are dropped by an inclusion and kept
    by an exclusion. An inclusion keeps a sub-document without the field as `{}` and leaves out a
    field that is missing, or a scalar where the path goes on.
    """
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            branch = tree.get(key)
            if branch is None:
                if not include:
                    result[key] = item
            elif branch is _LEAF:
                if include:
                    result[key] = item
            elif (projected := _project(item, branch, include)) is not _MISSING:
                result[key] = projected
        return result
    if isinstance(value, list):
        return [p for p in (_project(item, tree, include) for item in value) if p is not _MISSING]
    return _MISSING if include else value


def _is_plain(spec) -> bool:
    """Whether the projection `spec` only includes or excludes fields by path (what `_project` does)."""
    return isinstance(spec, dict) and all(
        isinstance(value, (bool, int, float)) and "$" not in path for path, value in spec.items()
    )


def records_from_folder(root: str) -> list[dict]:
    """The raw records of the asset folders under `root`, as the local source reads them
    (core files assembled, same `_id` and `location`); unreadable records are left out."""
    source = LocalFolderRecords(root)
    records = (source.raw_record(folder)[0] for folder in source.asset_folders())
    return [record for record in records if isinstance(record, dict)]


@dataclass
class _FailurePlan:
    after: int
    count: int
    status: int | str | None


@dataclass
class _Mutation:
    after: int
    change: Callable[[mongomock.collection.Collection], object]


class DocDbStandIn:
    """Serves `records` over the DocDB REST contract on `http://127.0.0.1:<port>/`."""

    def __init__(
        self,
        records: Iterable[dict],
        *,
        port: int = 0,
        version: str = DEFAULT_VERSION,
        database: str = DEFAULT_DATABASE,
        collection: str = DEFAULT_COLLECTION,
        max_batch: int | None = None,
    ):
        self.collection = mongomock.MongoClient()[database][collection]
        self._load(records)
        self.base_path = f"/{version}/{database}/{collection}"
        self.max_batch = max_batch
        self.requests: list[tuple[str, str, dict]] = []  # (method, route, decoded parameters or body)
        self.failures_served = 0
        self.bytes_served = 0  # response body bytes, all requests
        self._plans: list[_FailurePlan] = []
        self._mutations: list[_Mutation] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._thread: threading.Thread | None = None

    def _load(self, records: Iterable[dict]) -> None:
        seen: set = set()
        documents = []
        for record in records:
            if "_id" not in record:
                raise ValueError(f"record {record.get('name')!r} has no _id; DocDB records always have one")
            if record["_id"] in seen:
                raise ValueError(f"record _id {record['_id']!r} appears twice")
            seen.add(record["_id"])
            documents.append(record)
        if documents:
            self.collection.insert_many(documents)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def start(self) -> DocDbStandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="docdb-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> DocDbStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, count: int = 1, status: int | str | None = 503, after: int = 0) -> None:
        """Let `after` more requests through, then fail `count` requests with `status`
        (`DROP`: close the connection without an answer; `EMPTY`: answer `[]`). Plans run one
        after another."""
        with self._lock:
            self._plans.append(_FailurePlan(after=after, count=count, status=status))

    def mutate(self, change: Callable[[mongomock.collection.Collection], object], after: int = 0) -> None:
        """Once `after` more requests have reached the collection (injected failures do not count),
        call `change(collection)` before answering the next one: say, an insert and a delete
        between two pages. Each mutation counts from now."""
        with self._lock:
            self._mutations.append(_Mutation(after=after, change=change))

    def heal(self) -> None:
        """Forget every pending failure and mutation."""
        with self._lock:
            self._plans.clear()
            self._mutations.clear()

    def _next_failure(self) -> tuple[bool, int | str | None]:
        """(fail this request?, status) according to the plans."""
        with self._lock:
            while self._plans and self._plans[0].count <= 0:
                self._plans.pop(0)
            if not self._plans:
                return False, None
            plan = self._plans[0]
            if plan.after > 0:
                plan.after -= 1
                return False, None
            plan.count -= 1
            self.failures_served += 1
            return True, plan.status

    # -- the three operations --------------------------------------------------------------------

    def find(self, params: dict) -> list[dict]:
        spec = params.get("projection") or None
        plain = _projection_tree(spec) if _is_plain(spec) else None  # else mongomock projects
        cursor = self.collection.find(params.get("filter") or {}, None if plain else spec)
        if params.get("sort"):
            cursor = cursor.sort(list(params["sort"].items()))
        cursor = cursor.skip(params.get("skip", 0))
        caps = [n for n in (params.get("limit", 0), self.max_batch) if n]
        if caps:
            cursor = cursor.limit(min(caps))
        return [_project(document, *plain) for document in cursor] if plain else list(cursor)

    def aggregate(self, pipeline: list) -> list[dict]:
        return list(self.collection.aggregate(pipeline))

    def count_documents(self, params: dict) -> dict:
        return {
            "total_record_count": self.collection.count_documents({}),
            "filtered_record_count": self.collection.count_documents(params.get("filter") or {}),
        }

    def _apply_mutations(self) -> None:
        """Run the mutations due before this request; count the others down (under the lock)."""
        pending = []
        for mutation in self._mutations:
            if mutation.after == 0:
                mutation.change(self.collection)
            else:
                mutation.after -= 1
                pending.append(mutation)
        self._mutations = pending

    def answer(self, method: str, route: str, params: dict, body: object) -> tuple[int, object]:
        """(HTTP status, JSON body) for one request."""
        with self._lock:
            self.requests.append((method, route, copy.deepcopy(body if method == "POST" else params)))
            self._apply_mutations()
        try:
            with self._lock:  # mongomock is not made for concurrent use
                if method == "GET" and route == "find":
                    return 200, self.find(params)
                if method == "GET" and route == "count_documents":
                    return 200, self.count_documents(params)
                if method == "POST" and route == "aggregate":
                    if not isinstance(body, list):
                        return 400, {"message": "aggregate expects a JSON array (the pipeline)"}
                    return 200, self.aggregate(body)
        except (mongomock.OperationFailure, NotImplementedError, TypeError, ValueError) as error:
            return 400, {"message": f"{route}: {error}"}
        except Exception as error:  # a mongomock limitation
            return 500, {"message": f"{route}: stand-in error {type(error).__name__}: {error}"}
        return 404, {"message": f"no route {method} {self.base_path}/{route}"}


_JSON_PARAMS = ("filter", "projection", "sort")
_INT_PARAMS = ("limit", "skip")


def _handler(standin: DocDbStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            failing, status = standin._next_failure()
            if failing and status is DROP:
                self.close_connection = True
                return
            if failing and status == EMPTY:
                self._send(200, [])
                return
            if failing:
                self._send(status, {"message": "injected failure"})
                return
            url = urlsplit(self.path)
            if not url.path.startswith(standin.base_path + "/"):
                self._send(404, {"message": f"unknown collection path {url.path}"})
                return
            try:
                params = _decode_params(parse_qs(url.query, keep_blank_values=True))
                body = json.loads(raw_body) if raw_body else None
            except ValueError as error:
                self._send(400, {"message": f"bad request: {error}"})
                return
            self._send(*standin.answer(method, url.path[len(standin.base_path) + 1:], params, body))

        def _send(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            with standin._lock:
                standin.bytes_served += len(data)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # quiet: tests read `standin.requests`
            pass

    return Handler


def _decode_params(query: dict[str, list[str]]) -> dict:
    params: dict = {}
    for name, values in query.items():
        value = values[-1]
        if name in _JSON_PARAMS:
            params[name] = json.loads(value) if value else None
        elif name in _INT_PARAMS:
            params[name] = int(value)
        else:
            params[name] = value
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/docdb_standin.py", description=__doc__.splitlines()[0])
    parser.add_argument("--records", action="append", required=True, metavar="DIR",
                        help="folder of data-asset folders (repeatable)")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    parser.add_argument("--max-batch", type=int, default=None, help="at most this many documents per find")
    args = parser.parse_args(argv)
    records = [record for root in args.records for record in records_from_folder(root)]
    standin = DocDbStandIn(records, port=args.port, max_batch=args.max_batch)
    print(f"serving {len(records)} records at {standin.url} (Ctrl-C stops)", flush=True)
    print(f"use it: BIODATA_CACHE_ENV=prod BIODATA_DOCDB_LOOPBACK_PORT={standin.port}", flush=True)
    with standin:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
