"""Where the real AIND fixture records are: `../shared/fixtures/records`, read in place (never copied)."""

from pathlib import Path

import pytest

FIXTURE_RECORDS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "records"
needs_fixture_records = pytest.mark.skipif(
    not FIXTURE_RECORDS.is_dir(),
    reason=f"shared fixture records not found at {FIXTURE_RECORDS} (read in place, never copied)",
)
