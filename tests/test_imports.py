"""What a fresh process imports. A notebook's `import biodata_cache_client` loads each part on first
use. A snapshot worker loads neither Dagster nor pandas: spawned, it imports its parent's main
module (the `biodata-cache-pipeline` script), then the refresh and the source it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("dagster", "pandas", "duckdb")


def fresh_python(code: str, *args: str, cwd: Path | None = None, timeout: float = 120):
    """Run `code` in a fresh interpreter with this one's import path; the JSON of its last line."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment,
                          timeout=timeout, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


CLIENT = """
import json, pkgutil, sys, types, importlib
import biodata_cache_client as bdc
loaded_on_import = sorted(m for m in HEAVY if m in sys.modules)
for part in pkgutil.walk_packages(bdc.__path__, "biodata_cache_client."):
    importlib.import_module(part.name)  # every part loaded: no name of the package may become a module
exports = {name: getattr(bdc, name) for name in bdc.__all__}
print(json.dumps({
    "loaded_on_import": loaded_on_import,
    "modules": sorted(name for name, value in exports.items() if isinstance(value, types.ModuleType)),
    "foreign": sorted(
        name for name, value in exports.items() if not value.__module__.startswith("biodata_cache_client.")
    ),
    "names": sorted(exports),
}))
"""


def test_the_client_package_imports_its_parts_on_first_use():
    result = fresh_python(f"HEAVY = {HEAVY!r}\n{CLIENT}")
    assert result["loaded_on_import"] == []
    assert result["modules"] == [] and result["foreign"] == []
    assert {"asset_basics", "custom", "search", "history", "query", "provenance", "qc"} <= set(result["names"])


WORKER = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="__mp_main__")  # what a spawned worker does with its parent's script
import biodata_cache_pipeline.snapshot_refresh, biodata_cache_pipeline.sources.local_folder
import biodata_cache_pipeline.sources.docdb
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
"""


def test_a_snapshot_worker_imports_neither_dagster_nor_pandas():
    script = Path(sys.executable).parent / "biodata-cache-pipeline"
    assert fresh_python(f"HEAVY = {HEAVY!r}\n{WORKER}", str(script)) == []
