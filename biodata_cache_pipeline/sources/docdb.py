"""Production records source: DocDB through aind-data-access-api's `MetadataDbClient` (sources.md §1).

Reads only, as the record snapshot needs them (`DocDbSource`): a listing of every `_id` with its
`_last_modified` (one projected scan, paged by key: `_id` greater than the last one seen, sorted
by `_id`, so a record inserted or deleted meanwhile never shifts a page), then the records to
(re)read fetched by `_id $in` batches of about 100, projected on the fields the tables read. The
server may return fewer documents than asked. An empty answer ends a read only when
`count_documents` confirms that nothing it was asked for is left; otherwise the read fails with a
`DocDbError` naming the collection and the counts, rather than come back silently short. Every
request is retried on connection errors, timeouts, 429 and 5xx with exponential backoff; after
the last attempt a `DocDbError` names the collection URL, the request and the last error. No
Dagster here.

The client always builds `https://{host}/...` URLs. Its `session` argument is the seam:
`docdb_session(loopback_port=...)` mounts an adapter that sends those requests to a plain-HTTP
server on 127.0.0.1 (the stand-in in `tests/docdb_standin.py`), so tests run the real client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from aind_data_access_api.document_db import MetadataDbClient
from requests.adapters import HTTPAdapter

from biodata_cache_pipeline.records import is_text, normalize_record
from biodata_cache_pipeline.sources import ChangedRecords

DEFAULT_HOST = "api.allenneuraldynamics.org"
DEFAULT_DATABASE = "metadata_index"
DEFAULT_COLLECTION = "data_assets"
DEFAULT_VERSION = "v2"
DEFAULT_PAGE_SIZE = 500
DEFAULT_BATCH_SIZE = 100
DEFAULT_TIMEOUT = 120.0
LISTING_PAGE_SIZE = 5_000  # `_id` + `_last_modified` documents asked for per listing request
LISTING_FIELDS = ("_id", "_last_modified", "last_modified")
SORT_BY_ID = {"_id": 1}
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

T = TypeVar("T")


class DocDbError(RuntimeError):
    """A DocDB request failed for good (a persistent outage or a request the server rejects)."""


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries per request; waits `delay`, 2x`delay`, ... (at most `max_delay`) in between.

    A 429 with a `Retry-After` of a few seconds waits that long instead when it is longer.
    """

    attempts: int = 5
    delay: float = 1.0
    max_delay: float = 30.0

    def wait(self, failed_attempts: int, retry_after: float | None = None) -> float:
        backoff = self.delay * 2 ** (failed_attempts - 1)
        return min(self.max_delay, max(backoff, retry_after or 0.0))


class TimeoutAdapter(HTTPAdapter):
    """An adapter with a default timeout: the client passes none, and a hung server must not hang a run."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, **kwargs):
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=self.timeout if timeout is None else timeout, **kwargs)


class LoopbackAdapter(TimeoutAdapter):
    """Sends `https://<host>/...` to `http://127.0.0.1:<port>/...` (the DocDB stand-in)."""

    def __init__(self, host: str, port: int, **kwargs):
        self.prefix = f"https://{host}/"
        self.target = f"http://127.0.0.1:{port}/"
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        # Mounted for the prefix only, so every request it gets starts with it.
        request.url = self.target + request.url[len(self.prefix):]
        return super().send(request, **kwargs)


def docdb_session(host: str, timeout: float = DEFAULT_TIMEOUT, loopback_port: int | None = None) -> requests.Session:
    """The `requests.Session` for `MetadataDbClient`: a default timeout, and with `loopback_port`
    every request for `https://<host>/` goes to the stand-in on 127.0.0.1 instead (no proxies)."""
    session = requests.Session()
    if loopback_port is None:
        session.mount("https://", TimeoutAdapter(timeout))
    else:
        session.trust_env = False  # no HTTP(S)_PROXY from the environment on the way to loopback
        session.mount(f"https://{host}/", LoopbackAdapter(host, loopback_port, timeout=timeout))
    return session


def projection(fields: Iterable[str] | None) -> dict[str, int] | None:
    """The inclusion projection for dotted `fields` (None: whole records).

    A path inside another listed path is dropped: MongoDB rejects such path collisions. A path
    through a list of objects keeps, per object, the keys listed; anything else in the list
    (which the normaliser skips) is dropped. One difference from whole records: a non-list
    value where the path expects a list of objects vanishes, so for `processing.data_processes`
    the normaliser then reads the 1.x `processing.processing_pipeline.data_processes`; it can
    only matter for a record holding both layouts with a malformed 2.x value.
    """
    if fields is None:
        return None
    paths = sorted(set(fields))
    return {p: 1 for p in paths if not any(p.startswith(f"{other}.") for other in paths)}


def batches(values: Iterable[T], size: int) -> Iterator[list[T]]:
    """`values` in consecutive lists of at most `size` items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class DocDbRecords:
    """Records of one DocDB collection, read through `client` (a `MetadataDbClient`)."""

    def __init__(
        self,
        client: MetadataDbClient,
        page_size: int = DEFAULT_PAGE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ):
        if page_size < 1:
            raise ValueError(f"DocDB page size must be at least 1, got {page_size}")
        self.client = client
        self.page_size = page_size
        self.batch_size = batch_size
        self.retry = retry
        self.sleep = sleep

    @property
    def url(self) -> str:
        return self.client._base_url

    # -- documents -----------------------------------------------------------------------------

    def _page(self, filter_query: dict, fields_projection: dict | None, limit: int) -> list[dict]:
        page = self._call(
            f"find (filter {_brief(filter_query)})",
            lambda: self.client._find_records(
                filter_query=filter_query, projection=fields_projection, sort=SORT_BY_ID, limit=limit, skip=0
            ),
        )
        if not isinstance(page, list):
            raise DocDbError(f"DocDB find at {self.url} returned {type(page).__name__}, expected a list")
        return page

    def count(self, filter_query: dict) -> int:
        """The number of documents matching `filter_query` (`count_documents`)."""
        counts = self._call(
            f"count_documents (filter {_brief(filter_query)})", lambda: self.client._count_records(filter_query)
        )
        matching = counts.get("filtered_record_count") if isinstance(counts, dict) else None
        if not isinstance(matching, int):
            raise DocDbError(f"DocDB count_documents at {self.url} returned {_brief(counts)}, expected record counts")
        return matching

    def _confirm_none_left(self, filter_query: dict, read: int) -> None:
        """After an empty answer to `filter_query`: a `DocDbError` unless `count_documents` finds
        no document matching it either (a document deleted meanwhile is not one)."""
        left = self.count(filter_query)
        if left:
            raise DocDbError(
                f"DocDB find at {self.url} answered no documents for the filter {_brief(filter_query)} after "
                f"{read} read, but count_documents counts {left} matching: refusing an incomplete read"
            )

    def find(
        self, filter_query: dict | None = None, fields: Sequence[str] | None = None, page_size: int | None = None
    ) -> Iterator[dict]:
        """Every document matching `filter_query`, in `_id` order, one page per request.

        Paged by key (`_id` greater than the last seen), not by skip: a document inserted or
        deleted between two pages cannot make another one be read twice or missed. The client's
        `retrieve_docdb_records` pages by skip, gathers everything in memory and cannot retry one
        page, so the pages are asked for one by one with its `_find_records`. The empty page that
        ends the scan is confirmed by `count_documents` (`_confirm_none_left`).
        """
        fields_projection = projection(fields)
        last, read = None, 0
        while True:
            query = filter_query or {}
            if last is not None:
                after = {"_id": {"$gt": last}}
                query = {"$and": [query, after]} if query else after
            page = self._page(query, fields_projection, page_size or self.page_size)
            if not page:
                self._confirm_none_left(query, read)
                return
            yield from page
            read += len(page)
            last = page[-1]["_id"]

    def listing(self) -> Iterator[tuple[str, str | None]]:
        """(`_id`, `_last_modified`) of every document, in `_id` order."""
        for document in self.find(fields=LISTING_FIELDS, page_size=LISTING_PAGE_SIZE):
            yield str(document["_id"]), _signature(document)

    def by_id(self, ids: Iterable[str], fields: Sequence[str] | None = None) -> Iterator[dict]:
        """The documents with these `_id`s (those that exist), in `$in` batches of `batch_size`,
        each batch asked for until every id came back or the server returns `[]` for ids that
        `count_documents` confirms are gone."""
        fields_projection = None if fields is None else projection([*fields, *LISTING_FIELDS])
        for batch in batches(sorted(set(ids)), self.batch_size):
            remaining = set(batch)
            while remaining:
                query = {"_id": {"$in": sorted(remaining)}}
                page = self._page(query, fields_projection, len(remaining))
                if not page:
                    self._confirm_none_left(query, len(batch) - len(remaining))
                    break
                yield from page
                remaining -= {document.get("_id") for document in page}

    # -- retries ---------------------------------------------------------------------------------

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """`request()`, retried on transient failures; a `DocDbError` naming `what` when it gives up."""
        for attempt in range(1, self.retry.attempts + 1):
            retry_after = None
            try:
                return request()
            except TRANSIENT_ERRORS as error:
                last = f"{type(error).__name__}: {error}"
            except requests.HTTPError as error:
                status = error.response.status_code if error.response is not None else None
                if status != 429 and (status is None or status < 500):
                    raise DocDbError(f"DocDB {what} at {self.url} was rejected: {_http_error(error)}") from error
                last = _http_error(error)
                retry_after = _retry_after(error.response)
            except ValueError as error:  # a body that is not JSON
                raise DocDbError(f"DocDB {what} at {self.url} returned an unreadable response: {error}") from error
            if attempt < self.retry.attempts:
                self.sleep(self.retry.wait(attempt, retry_after))
        raise DocDbError(f"DocDB {what} at {self.url} failed after {self.retry.attempts} attempts; last error: {last}")


def _brief(value: Any, limit: int = 160) -> str:
    """`value` as JSON for an error message, cut to `limit` characters."""
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _http_error(error: requests.HTTPError) -> str:
    response = error.response
    if response is None:
        return str(error)
    return f"HTTP {response.status_code} {response.reason}: {response.text[:200]}"


def _retry_after(response: requests.Response | None) -> float | None:
    try:
        return float(response.headers.get("Retry-After", "")) if response is not None else None
    except ValueError:  # an HTTP date: fall back to the backoff
        return None


def _signature(document: dict) -> str | None:
    """What tells a changed record: its `_last_modified` (as text, as JSON when it is not a string
    that UTF-8 can store); None when it has none."""
    value = document.get("_last_modified", document.get("last_modified"))
    if value is None or (isinstance(value, str) and is_text(value)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class DocDbSource:
    """The records of one DocDB collection, as the record snapshot reads them (picklable:
    `read_changed` runs in worker processes, each with its own client).

    `fields`: the record paths the tables read (the projection of every fetch).
    """

    host: str = DEFAULT_HOST
    database: str = DEFAULT_DATABASE
    collection: str = DEFAULT_COLLECTION
    version: str = DEFAULT_VERSION
    page_size: int = DEFAULT_PAGE_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    retry: RetryPolicy = RetryPolicy()
    timeout: float = DEFAULT_TIMEOUT
    loopback_port: int | None = None
    fields: tuple[str, ...] | None = field(default=None)

    @property
    def label(self) -> str:
        return f"https://{self.host}/{self.version}/{self.database}/{self.collection}"

    def _read(self, read: Callable[[DocDbRecords], T]) -> T:
        session = docdb_session(self.host, self.timeout, self.loopback_port)
        with MetadataDbClient(self.host, self.database, self.collection, self.version, session=session) as client:
            return read(DocDbRecords(client, self.page_size, self.batch_size, self.retry))

    def listing(self) -> list[tuple[str, str | None]]:
        return self._read(lambda records: list(records.listing()))

    def read_changed(self, entries: Sequence[tuple[str, str | None, str | None]]) -> ChangedRecords:
        """The records of the (`_id`, listed signature, snapshot signature) entries that are still
        in the collection."""
        keys = [key for key, _, _ in entries]

        def fetch(records: DocDbRecords) -> ChangedRecords:
            found = {str(d.get("_id")): d for d in records.by_id(keys, self.fields)}
            return ChangedRecords(
                [(key, _signature(found[key]), normalize_record(found[key])) for key in keys if key in found]
            )

        return self._read(fetch)
