"""`dg check defs`, as `make check-defs` runs it, on a copy of the project: it passes on the
definitions as they are and fails on definitions that do not validate."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
DG = PROJECT / ".venv-dg" / "bin" / "dg"


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """pyproject.toml, dg-workspace/ and the pipeline package, with .venv linked to the environment
    running the tests (dg starts the code location with `.venv/bin/python`)."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(PROJECT / "pyproject.toml", copy)
    shutil.copytree(PROJECT / "dg-workspace", copy / "dg-workspace")
    shutil.copytree(PROJECT / "biodata_cache_pipeline", copy / "biodata_cache_pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".venv").symlink_to(sys.prefix)
    return copy


def check_defs(project: Path) -> subprocess.CompletedProcess:
    assert DG.exists(), f"{DG} is missing: `make check-defs` installs dg there"
    environment = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    return subprocess.run([str(DG), "check", "defs"], cwd=project / "dg-workspace", env=environment,
                          capture_output=True, text=True, timeout=300)


def test_the_definitions_pass(project_copy):
    result = check_defs(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout


def test_definitions_missing_their_resources_fail(project_copy):
    definitions = project_copy / "biodata_cache_pipeline" / "definitions.py"
    definitions.write_text(definitions.read_text() + "\ndefs = build_definitions(resources={})\n")
    result = check_defs(project_copy)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Validation failed for code location biodata_cache" in output
    assert "resource with key 'cache'" in output
