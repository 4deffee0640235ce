"""biodata-cache pipeline: AIND metadata records in, versioned parquet cache tables out.

Pipeline processes (the command and its snapshot workers, Dagster's code servers) allocate Arrow
memory from jemalloc, which pyarrow's Linux wheels hold, unless `ARROW_DEFAULT_MEMORY_POOL` says
otherwise. Their default, mimalloc, gives freed memory back so eagerly that each table step pays
for it again in page faults: on a 30,000-record build jemalloc made the build about 10% faster and
the nightly run 20%, with a smaller process (benchmarks/README.md, session 8). Arrow reads the
setting when pyarrow loads, so it is set before; a process that loaded pyarrow first keeps its pool.
"""

import os
import sys

if sys.platform == "linux" and "pyarrow" not in sys.modules:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

from biodata_cache_client.layout import PIPELINE_VERSION, version_folder  # noqa: E402 - after the setting

__all__ = ["PIPELINE_VERSION", "version_folder"]
