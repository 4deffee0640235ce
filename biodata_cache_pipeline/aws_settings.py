"""The pipeline's AWS settings through dagster-aws: the cache's S3 connection from an `S3Resource`,
and the prod settings that may live in Parameter Store (`ParameterStoreResource`).

Parameter Store: with `BIODATA_SSM_PREFIX` set (e.g. `/biodata-cache/prod`), the prod environment
reads each setting of `STORED_SETTINGS` from the parameter `<prefix>/<name>`, unless its environment
variable is set (non-empty): a variable overrides its parameter, a parameter missing (with its
variable unset) is an error naming it. Parameters are read with boto3's usual region and
credentials (on ECS, the task role) and decrypted, so SecureString parameters work too.
"""

from __future__ import annotations

import os
import warnings

from botocore.exceptions import BotoCoreError, ClientError
from dagster import BetaWarning
from dagster_aws.s3 import S3Resource
from dagster_aws.ssm import ParameterStoreResource

from biodata_cache_client.storage import S3Connection

# Attempts per S3 request (boto3 and pyarrow): pyarrow's own default. Cache reads are retried again
# around it (`RetryingS3Handler`, 5 attempts), so S3Resource's default of 5 would make a read of an
# unreachable cache make 25 requests, with backoff, before it fails.
S3_MAX_ATTEMPTS = 3
SSM_PREFIX_VARIABLE = "BIODATA_SSM_PREFIX"
# Parameter name under the prefix -> the environment variable that overrides it.
STORED_SETTINGS = {
    "docdb_host": "BIODATA_DOCDB_HOST",
    "docdb_collection": "BIODATA_DOCDB_COLLECTION",
    "cache_root": "BIODATA_CACHE_ROOT",
}


class SettingsError(ValueError):
    """A setting that cannot be read; its message is one line naming it."""


def cache_s3_resource() -> S3Resource:
    """The cache's S3 resource: its unset fields come from the standard AWS environment."""
    return S3Resource(max_attempts=S3_MAX_ATTEMPTS)


def cache_connection(s3: S3Resource | None) -> S3Connection:
    """The cache's S3 connection from the resource's fields (None: `cache_s3_resource()`).

    `use_ssl=False` and `verify` are refused: pyarrow's filesystem cannot follow them, and both
    clients must reach S3 alike (an `http://` endpoint turns TLS off for both).
    """
    s3 = s3 or cache_s3_resource()
    if not s3.use_ssl or s3.verify is not None:
        raise SettingsError(
            "the cache's S3Resource sets use_ssl or verify, which the cache's pyarrow filesystem cannot "
            "follow: leave them unset (use an http:// endpoint_url for a plain-HTTP endpoint)"
        )
    return S3Connection(
        endpoint_url=s3.endpoint_url,
        region=s3.region_name,
        max_attempts=s3.max_attempts,
        unsigned=s3.use_unsigned_session,
        profile_name=s3.profile_name,
        access_key_id=s3.aws_access_key_id,
        secret_access_key=s3.aws_secret_access_key,
        session_token=s3.aws_session_token,
    )


def stored_settings() -> dict[str, str]:
    """Environment variable -> value, read from Parameter Store for each setting of
    `STORED_SETTINGS` whose variable is unset or empty; {} when `BIODATA_SSM_PREFIX` is unset."""
    prefix = os.environ.get(SSM_PREFIX_VARIABLE, "").strip().rstrip("/")
    if not prefix:
        return {}
    if not prefix.startswith("/"):
        raise SettingsError(f"{SSM_PREFIX_VARIABLE}={prefix!r} is not a parameter path: start it with '/'")
    wanted = {
        f"{prefix}/{name}": variable for name, variable in STORED_SETTINGS.items() if not os.environ.get(variable)
    }
    if not wanted:
        return {}
    try:
        region = os.environ.get("AWS_REGION") or None  # else boto3's own chain (AWS_DEFAULT_REGION, profile)
        with warnings.catch_warnings():  # dagster-aws marks it beta: no warning on every run
            warnings.simplefilter("ignore", BetaWarning)
            store = ParameterStoreResource(parameters=list(wanted), with_decryption=True, region_name=region)
        found = store.fetch_parameters()
    except (BotoCoreError, ClientError) as error:
        reason = " ".join(str(error).split())
        raise SettingsError(f"could not read the Parameter Store parameters {', '.join(wanted)}: {reason}") from None
    for parameter, variable in wanted.items():
        if parameter not in found:
            raise SettingsError(
                f"Parameter Store parameter {parameter} is missing ({SSM_PREFIX_VARIABLE}={prefix}): "
                f"create it, or set {variable}"
            )
    return {variable: found[parameter] for parameter, variable in wanted.items()}

