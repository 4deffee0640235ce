"""biodata-cache pipeline: AIND metadata records in, versioned parquet cache tables out."""

from biodata_cache_client.layout import PIPELINE_VERSION, version_folder

__all__ = ["PIPELINE_VERSION", "version_folder"]
