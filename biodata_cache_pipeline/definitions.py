"""The Dagster code location: the eleven cache-table assets and their resources."""

from dagster import Definitions

from biodata_cache_pipeline.assets import ALL_ASSETS
from biodata_cache_pipeline.environment import local_resources

defs = Definitions(assets=ALL_ASSETS, resources=local_resources())
