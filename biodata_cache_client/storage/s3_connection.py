"""How a cache root on S3 is reached: one connection description that makes both the boto3 client
and the pyarrow `S3FileSystem` of an `S3Storage`, so objects put through boto3 and data written
through pyarrow use the same endpoint, region, retries, signing and credentials.

It depends on boto3 and pyarrow only (no Dagster): the pipeline derives it from its
`dagster_aws.s3.S3Resource` (`biodata_cache_pipeline.aws_settings.cache_connection`), the notebook
client and tests use a plain value. A field left None is taken from the standard AWS environment,
as boto3 itself does: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` /
`AWS_DEFAULT_REGION` (else pyarrow looks the bucket's region up), credentials from boto3's chain
(environment, profile, role); without credentials pyarrow reads anonymously.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
import pyarrow.fs as pafs
from botocore import UNSIGNED
from botocore.config import Config


@dataclass(frozen=True)
class S3Connection:
    """Endpoint, region, retries, signing and credentials of the S3 requests of one cache root."""

    endpoint_url: str | None = None
    region: str | None = None
    # Attempts per request, the first included: boto3's standard retry mode and pyarrow's
    # AwsStandardS3RetryStrategy. None keeps each SDK's default.
    max_attempts: int | None = None
    # Unsigned (anonymous) requests. Without it pyarrow still reads anonymously when no
    # credentials are found (a public cache); boto3, which only writes, then fails naming them.
    unsigned: bool = False
    profile_name: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def resolved_endpoint(self) -> str | None:
        return self.endpoint_url or env_endpoint_url()

    @property
    def resolved_region(self) -> str | None:
        return self.region or env_region()

    def client(self, region: str | None = None):
        """A boto3 S3 client; `region` (e.g. the filesystem's resolved one) when none is configured."""
        config = Config()
        if self.max_attempts is not None:
            # botocore's `max_attempts` counts the retries only; `total_max_attempts` counts the first try too
            config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": self.max_attempts}))
        if self.unsigned:
            config = config.merge(Config(signature_version=UNSIGNED))
        return self._session().client(
            "s3", endpoint_url=self.resolved_endpoint, region_name=self.resolved_region or region, config=config
        )

    def filesystem(self, bucket: str) -> pafs.S3FileSystem:
        """The pyarrow filesystem for `bucket` (whose region is looked up when none is known)."""
        options = {}
        endpoint = self.resolved_endpoint
        if endpoint and "://" in endpoint:
            parts = urlsplit(endpoint)
            options.update(endpoint_override=parts.netloc, scheme=parts.scheme)
        elif endpoint:
            options.update(endpoint_override=endpoint)
        if self.max_attempts is not None:
            options["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=self.max_attempts)
        region = self.resolved_region or (None if endpoint else pafs.resolve_s3_region(bucket))
        credentials = None if self.unsigned else self._session().get_credentials()
        if credentials is None:
            options["anonymous"] = True
        else:
            frozen = credentials.get_frozen_credentials()
            options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
        return pafs.S3FileSystem(region=region, **options)

    def _session(self) -> boto3.Session:
        return boto3.Session(
            profile_name=self.profile_name,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
        )


def env_endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
