"""Client reads from S3 through a loopback proxy in front of moto that answers some requests with
503 SlowDown: transient failures are retried, persistent ones raise `CacheReadError` naming the object."""

from __future__ import annotations

import http.client
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import boto3
import pandas as pd
import pytest

import biodata_cache_client as bdc
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables import TABLES
from biodata_cache_pipeline.version import version_folder

VERSION = version_folder()
ROOT = "s3://client-cache/data-asset-cache"  # the client_s3_cache fixture
SLOW_DOWN = (  # as S3 sends it: longer than a small ranged read (one column chunk) asks for
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>7V2KQ8W4CZ3N1M5P</RequestId>"
    b"<HostId>" + b"h" * 76 + b"</HostId></Error>"
)
QC = TABLES["quality_control"]
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
pytestmark = pytest.mark.usefixtures("client_settings")


class FaultProxy(ThreadingHTTPServer):
    """Forwards every request to moto, except those `fails(number, method, path)` answers with a 503."""

    daemon_threads = True

    def __init__(self, upstream: str, fails: Callable[[int, str, str], bool]):
        self.upstream = urlsplit(upstream)
        self.fails = fails
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.forwarded = 0
        self.refused = 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, *args) -> None:
        pass

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with self.server.lock:
            refuse = self.server.fails(next(self.server.numbers), self.command, self.path)
            self.server.refused += refuse
            self.server.forwarded += not refuse
        if refuse:
            self.send_response(503, "Slow Down")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(SLOW_DOWN)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(SLOW_DOWN)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        length = response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward


@pytest.fixture
def through_proxy(client_s3_cache, aws_env, monkeypatch) -> Iterator[Callable[[Callable], FaultProxy]]:
    """Start a proxy with the given fault rule; the client's S3 requests go through it from then on."""
    proxies = []

    def start(fails: Callable[[int, str, str], bool]) -> FaultProxy:
        proxy = FaultProxy(aws_env["AWS_ENDPOINT_URL"], fails)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        return proxy

    yield start
    for proxy in proxies:
        proxy.shutdown()
        proxy.server_close()


def every(n: int) -> Callable[[int, str, str], bool]:
    return lambda number, method, path: number % n == 0


@pytest.fixture
def narrow_root(aws_env) -> str:
    """QC partitions whose `status` column chunk is a ranged read of about a hundred bytes."""
    root = f"s3://client-narrow-{uuid.uuid4().hex[:12]}/cache"
    boto3.client("s3").create_bucket(Bucket=root.removeprefix("s3://").split("/")[0])
    store = CacheStore(root)
    for subject in range(8):
        rows = [
            {"name": f"metric-{i}", "modality": "ecephys", "stage": "Raw data", "value": str(i * 7919 % 1000),
             "status": ("Pass", "Fail", "Pending")[i % 3], "asset_name": f"asset-{subject}-{i}",
             "subject_id": str(subject), "timestamp": None}
            for i in range(3000)
        ]
        store.write_partition(QC, str(subject), QC.from_rows(rows))
    store.register_version()
    return root


def reads(narrow_root: str) -> dict:
    """Every kind of client read (tables, partitions, SQL with a join, registry, versions, info) of
    the client cache, then reads of one narrow column of the narrow root."""
    bdc.configure(root=ROOT)
    read = {
        "basics": bdc.asset_basics(),
        "qc": bdc.quality_control(None),
        "one_subject": bdc.qc(bdc.unique_subject_ids()[0]),
        "platforms": bdc.platform_qc(["fib", "spim"]),
        "join": bdc.query(
            "select b.subject_id, q.status, count(*) n from quality_control q join asset_basics b "
            "on q.asset_name = b.name group by all order by all"
        ),
        "registry": bdc.get_cache_registry(),
        "versions": bdc.get_cache_versions(),
        "info": bdc.cache_info("platform_qc"),
        **{f"sql {name}": bdc.query(f"select * from {name}") for name in TABLES},
    }
    bdc.configure(root=narrow_root)
    for attempt in range(4):
        read[f"statuses {attempt}"] = bdc.query("select status, count(*) n from quality_control group by 1 order by 1")
        read[f"status column {attempt}"] = bdc.quality_control(None, columns=["status"])
    return read


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, right[key], obj=key)
        else:
            assert value == right[key], key


def test_reads_succeed_when_one_request_in_twenty_is_slowed_down(through_proxy, narrow_root):
    """Through pyarrow's S3 client: a 503 answering a small ranged read used to fail the read with
    `Failed to flush response stream` (the SDK does not retry it). The local copy reads with boto3,
    whose retries cover it."""
    expected = reads(narrow_root)
    proxy = through_proxy(every(20))
    assert_same(reads(narrow_root), expected)
    assert proxy.refused >= 5  # 503s were answered, and retried


@pytest.mark.parametrize("local_copy", [False, True], ids=["direct", "local-copy"])
def test_when_every_request_fails_the_error_names_the_object(through_proxy, tmp_path, local_copy):
    copy = str(tmp_path / "copy") if local_copy else None
    through_proxy(every(1))
    bdc.configure(root=ROOT, local_copy=copy)
    with pytest.raises(bdc.CacheReadError, match=rf"could not read {ROOT}/cache_versions.json\b.*503"):
        bdc.asset_basics()
    bdc.configure(root=ROOT, local_copy=copy, version=VERSION)
    with pytest.raises(bdc.CacheReadError) as raised:
        bdc.asset_basics()
    message = str(raised.value)
    assert f"{ROOT}/{VERSION}/asset_basics.pqt" in message and "\n" not in message
    assert message.endswith("check the network and the AWS settings (AWS_ENDPOINT_URL, credentials), then try again")


def test_a_partition_that_cannot_be_read_is_named(through_proxy):
    bdc.configure(root=ROOT)
    subjects = sorted(set(bdc.quality_control(None, columns=["subject_id"])["subject_id"]))
    broken = f"subject_id={subjects[1]}/data.pqt"
    through_proxy(lambda number, method, path: method == "GET" and unquote(urlsplit(path).path).endswith(broken))
    assert len(bdc.qc(subjects[0])) > 0  # the other partitions still read
    reads_of_the_whole_table = (
        lambda: bdc.quality_control(None),
        lambda: bdc.query("select count(*) from quality_control"),  # scanned by DuckDB
    )
    for read in reads_of_the_whole_table:
        with pytest.raises(bdc.CacheReadError, match=rf"could not read {ROOT}/{VERSION}/qc/{broken} \(5 attempts\)"):
            read()
