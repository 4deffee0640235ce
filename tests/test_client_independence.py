"""The client depends on the cache contract only: it imports, reads and writes custom tables with
`biodata_cache_pipeline` impossible to import (a notebook install without the pipeline)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from test_imports import fresh_python

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_client.schema.unique_values import UNIQUE_GENOTYPES
from biodata_cache_pipeline.storage import CacheStore

# Runs in a fresh interpreter: any import of the pipeline fails, then the client reads the cache.
CLIENT_WITHOUT_PIPELINE = """
import json, sys

class NoPipeline:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "biodata_cache_pipeline":
            raise ImportError(f"{name} is blocked: the client must not import the pipeline")

sys.meta_path.insert(0, NoPipeline())
import pandas as pd
import biodata_cache_client as bdc

bdc.configure(backend="LOCAL", root=sys.argv[1])
qc = bdc.qc("600015")
bdc.custom("mine", pd.DataFrame({"a": [1, 2]}))
print(json.dumps({
    "versions": bdc.get_cache_versions(),
    "genotypes": bdc.unique_genotypes(),
    "statuses": list(qc["status"].cat.categories),
    "worst": qc["status"].max(),
    "sql": bdc.query("select count(*) as n from quality_control")["n"].tolist(),
    "custom": bdc.custom("mine")["a"].tolist(),
    "pipeline_modules": sorted(m for m in sys.modules if m.startswith("biodata_cache_pipeline")),
}))
"""


def _write_small_cache(root: Path) -> None:
    """Two tables written by the pipeline's writer, as a build publishes them."""
    store = CacheStore(str(root))
    store.write_table(UNIQUE_GENOTYPES, UNIQUE_GENOTYPES.from_columns({"genotype": ["Ai14/wt", "wt/wt"]}))
    when = datetime(2025, 2, 24, tzinfo=timezone.utc)
    rows = [
        {"name": metric, "modality": "behavior", "stage": "Raw data", "value": "1", "status": status,
         "asset_name": "behavior_600015", "subject_id": "600015", "timestamp": when}
        for metric, status in (("a", "Pass"), ("b", "Fail"), ("c", "Pending"))
    ]
    store.write_partition(QUALITY_CONTROL, "600015", QUALITY_CONTROL.from_rows(rows))
    for spec in (UNIQUE_GENOTYPES, QUALITY_CONTROL):
        store.publish_metadata(spec, {"row_count": 3})
    store.register_version()


def test_the_client_reads_and_writes_without_the_pipeline(tmp_path: Path):
    root = tmp_path / "cache"
    _write_small_cache(root)
    result = fresh_python(CLIENT_WITHOUT_PIPELINE, str(root), cwd=tmp_path, timeout=300)
    assert result == {
        "versions": [version_folder()],
        "genotypes": ["Ai14/wt", "wt/wt"],
        "statuses": ["Pass", "Pending", "Fail"],
        "worst": "Fail",
        "sql": [3],
        "custom": [1, 2],
        "pipeline_modules": [],
    }
    assert (root / version_folder() / "custom" / "mine.pqt").is_file()
