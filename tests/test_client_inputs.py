"""The client with inputs as notebooks give them: int subject ids, one filter tuple, frames with a
MultiIndex or complex numbers, SQL over custom and missing tables, a local root that does not
exist, and the client installed the way the README says."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.storage import CacheStore

REPOSITORY = Path(__file__).resolve().parents[1]
VERSION = version_folder()
pytestmark = pytest.mark.usefixtures("client_settings")


@pytest.fixture
def cache_copy(client_local_cache, tmp_path) -> str:
    """A copy of the built local cache, selected, for tests that add custom tables."""
    root = str(tmp_path / "cache")
    shutil.copytree(client_local_cache, root)
    bdc.configure(root=root)
    return root


def test_int_subject_ids_read_like_strings(client_local_cache):
    bdc.configure(root=client_local_cache)
    counts = bdc.quality_control(None)["subject_id"].value_counts()
    subject = next(s for s in counts.index if s.isdigit() and str(int(s)) == s)
    expected = bdc.qc(subject)
    assert len(expected) == counts[subject]
    for given in (int(subject), np.int64(subject), [int(subject)]):
        pd.testing.assert_frame_equal(bdc.qc(given), expected)


def test_one_filter_tuple_is_one_filter(client_local_cache):
    bdc.configure(root=client_local_cache)
    raw = bdc.asset_basics(columns=["name"], filters=[("data_level", "=", "raw")])
    assert len(raw) > 0
    pd.testing.assert_frame_equal(bdc.asset_basics(columns=["name"], filters=("data_level", "=", "raw")), raw)
    for shape in ("data_level = raw", [("data_level", "=")], [[]], 5):
        with pytest.raises(ValueError, match=r"are not \(column, op, value\), a list of them \(AND\)"):
            bdc.asset_basics(filters=shape)


def test_custom_keeps_a_multiindex(cache_copy):
    index = pd.MultiIndex.from_tuples([("600015", "a1"), ("600015", "a2"), ("7", "a3")], names=["subject", "asset"])
    frame = pd.DataFrame({"score": [0.5, 1.5, 2.5]}, index=index)
    bdc.custom("scores", frame)
    pd.testing.assert_frame_equal(bdc.custom("scores"), frame)
    stored = bdc.query("select subject, asset, score from custom.scores order by asset")
    assert stored.to_dict("list") == frame.reset_index().to_dict("list")


def test_custom_names_a_column_parquet_cannot_hold(cache_copy):
    frame = pd.DataFrame({"name": ["a"], "impedance": [1 + 2j]})
    with pytest.raises(TypeError, match=r"custom table z: column 'impedance' of type complex128 cannot be stored"):
        bdc.custom("z", frame)
    assert not Path(cache_copy, VERSION, "custom", "z.pqt").exists()


def test_query_sees_custom_tables_as_views(cache_copy):
    basics = bdc.asset_basics(columns=["name", "subject_id"])
    notes = pd.DataFrame({"name": basics["name"].head(3), "note": ["x", "y", "z"]})
    bdc.custom("my-notes", notes)
    joined = bdc.query(
        'select n.note, b.subject_id from custom."my-notes" n join asset_basics b using (name) order by n.note'
    )
    assert joined["note"].tolist() == ["x", "y", "z"]
    assert joined["subject_id"].tolist() == basics["subject_id"].head(3).tolist()


def test_query_of_a_missing_table_lists_the_tables(cache_copy):
    bdc.custom("my-notes", pd.DataFrame({"a": [1]}))
    for table in ("asset_basic", "custom.nope"):
        with pytest.raises(bdc.TableNotFoundError) as error:
            bdc.query(f"select * from {table}")
        message = str(error.value)
        assert message.startswith(f"table {table} not found in version folder {VERSION} of cache root {cache_copy}")
        assert all(name in message for name in TABLES) and "custom.my-notes" in message
        assert "sqlite" not in message and "pg_" not in message


def test_missing_local_root_says_so_and_how_to_set_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a notebook opened where no `.biodata-cache` is
    bdc.configure(backend="LOCAL")
    reads = [
        ("asset_basics", bdc.asset_basics),
        ("quality_control", lambda: bdc.qc("1")),
        ("custom/mine", lambda: bdc.custom("mine")),
        ("asset_basics", lambda: bdc.query("select * from asset_basics")),
        ("nope", lambda: bdc.query("select * from nope")),
    ]
    for table, read in reads:
        with pytest.raises(bdc.TableNotFoundError) as error:
            read()
        assert str(error.value) == (
            f"table {table} not found: cache root {tmp_path}/.biodata-cache does not exist; set "
            "BIODATA_CACHE_ROOT (or configure(root=...), or --root) to the absolute path of the cache folder, "
            "e.g. the .biodata-cache folder that `make run` wrote"
        )
    CacheStore(str(tmp_path / ".biodata-cache")).register_version()  # the root exists: the usual message
    with pytest.raises(bdc.TableNotFoundError, match=f"table asset_basics not found in version folder {VERSION}"):
        bdc.asset_basics()


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, result.stderr
    return result


def test_readme_install_route_gives_an_installed_client(tmp_path, client_local_cache):
    """A wheel of the project installed without extras in a fresh environment: the client imports
    from there, needs no Dagster, and reads a cache, from Python and from its console script."""
    readme = (REPOSITORY / "README.md").read_text()
    assert "pip install biodata-cache`" not in readme  # that name on PyPI is another package
    assert "pip wheel --no-deps -w dist . && pip install dist/biodata_cache-*.whl" in readme
    source = tmp_path / "source"
    source.mkdir()
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / file, source)
    for package in ("biodata_cache_client", "biodata_cache_pipeline"):
        shutil.copytree(REPOSITORY / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", source])
    (wheel,) = (tmp_path / "dist").glob("biodata_cache-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel])
    installed = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    # The dependencies come from this interpreter's site-packages, added as plain paths: the .pth
    # files there (this repository's editable install) are not processed.
    (installed / "dependencies.pth").write_text("\n".join(site.getsitepackages()))
    script = (
        "import sys\n"
        "sys.modules['dagster'] = None\n"
        "from importlib.metadata import distribution\n"
        "import biodata_cache_client as bdc\n"
        f"bdc.configure(backend='LOCAL', root={client_local_cache!r})\n"
        "print(bdc.__file__)\n"
        "print(distribution('biodata-cache').locate_file(''))\n"
        "print(len(bdc.asset_basics()))\n"
        "print(' '.join(r for r in distribution('biodata-cache').requires if 'extra ==' not in r))\n"
    )
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    client_file, metadata_folder, rows, requirements = run(
        [python, "-c", script], cwd=tmp_path, env=environment
    ).stdout.splitlines()
    assert Path(client_file) == installed / "biodata_cache_client" / "__init__.py"
    assert Path(metadata_folder) == installed
    bdc.configure(root=client_local_cache)
    assert int(rows) == len(bdc.asset_basics())
    assert "pyarrow" in requirements and "dagster" not in requirements  # the client needs no extra
    tables = run([venv / "bin" / "biodata-cache", "tables", "--backend", "LOCAL", "--root", client_local_cache],
                 cwd=tmp_path, env=environment)
    assert sorted(line.split()[0] for line in tables.stdout.splitlines()) == sorted(TABLES)

