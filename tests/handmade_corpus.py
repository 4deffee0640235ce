"""Small hand-written corpora for pipeline tests: a few records whose every field the test controls."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS


def asset_name(subject: str, n: int) -> str:
    """A folder name the local records source accepts (`<anything>_<date>_<time>`)."""
    return f"behavior_{subject}_2025-01-{n + 1:02d}_03-04-05"


def write_record(root: Path, name: str, subject_id: str, last_modified: str = "2025-01-01T00:00:00Z",
                 record_id: str | None = None, metrics: int = 2) -> None:
    record = {
        "_id": record_id or f"id-{name}",
        "_last_modified": last_modified,
        "name": name,
        "subject": {"subject_id": subject_id},
        "acquisition": {"acquisition_start_time": "2025-01-02T03:04:05Z"},
        "quality_control": {
            "metrics": [
                {"name": f"m{i}", "stage": "Raw data", "value": i, "status_history": [{"status": "Pass"}]}
                for i in range(metrics)
            ]
        },
    }
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "metadata.nd.json").write_text(json.dumps(record))


def remove_record(root: Path, name: str) -> None:
    (root / name / "metadata.nd.json").unlink()
    (root / name).rmdir()


def write_corpus(root: Path, subjects: list[str], records_per_subject: int = 2) -> None:
    """Records for `subjects` and an empty foraging session table."""
    for subject in subjects:
        for n in range(records_per_subject):
            write_record(root, asset_name(subject, n), subject)
    (root / "_foraging").mkdir(parents=True)
    pq.write_table(FORAGING_SESSIONS.empty(), root / "_foraging" / "session_table.parquet")


def use_local_environment(monkeypatch, samples: Path, cache: Path) -> None:
    """Point `pipeline_resources()` at `samples` and `cache`."""
    monkeypatch.setenv("BIODATA_CACHE_ENV", "local")
    monkeypatch.setenv("BIODATA_SAMPLE_ROOT", str(samples))
    monkeypatch.setenv("BIODATA_CACHE_ROOT", str(cache))
    for variable in ("BIODATA_FORAGING_SESSIONS", "BIODATA_OPEN_DATA_ROOT"):
        monkeypatch.delenv(variable, raising=False)
