"""`biodata-cache` through its console-script entry point, against a cache built by the pipeline."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES

VERSION = version_folder()
pytestmark = pytest.mark.usefixtures("client_settings")


@pytest.fixture
def cli(client_local_cache, capsys):
    """Run the installed entry point in-process on the local cache; return (exit code, stdout, stderr)."""
    (script,) = entry_points(group="console_scripts", name="biodata-cache")
    main = script.load()
    bdc.configure(root=client_local_cache)  # for the library calls that check the output

    def run(*args: str, root: str | None = client_local_cache) -> tuple[int, str, str]:
        code = main(["--root", root, *args] if root else list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_versions(cli):
    assert cli("versions") == (0, f"* {VERSION}\n", "")


def test_tables(cli):
    code, out, _ = cli("tables")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(TABLES)
    qc_line = next(line for line in lines if line.startswith("quality_control"))
    info = bdc.cache_info("quality_control")
    assert f"{info['rows']} rows" in qc_line and f"{info['partitions']} partitions" in qc_line


def test_info(cli, client_local_cache):
    code, out, _ = cli("info", "platform_qc")
    assert code == 0
    assert out.startswith("platform_qc: ")
    assert f"location          {client_local_cache}/{VERSION}/platform_qc/" in out
    assert "built_at" in out and "partitions        5" in out
    for column in TABLES["platform_qc"].column_names:
        assert f"    {column} " in out


def test_show_with_subject_and_limit(cli):
    subject = bdc.quality_control(None)["subject_id"].value_counts().index[0]
    code, out, _ = cli("show", "quality_control", "--subject", subject, "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == TABLES["quality_control"].column_names
    assert len(lines) == 1 + 3 + 1
    assert lines[-1] == f"({len(bdc.qc(subject))} rows)"
    code, out, _ = cli("show", "asset_basics", "--subject", subject, "--limit", "100")
    assert out.splitlines()[-1] == f"({len(bdc.asset_basics(filters=[('subject_id', '=', subject)]))} rows)"


def test_export_csv_and_parquet(cli, tmp_path):
    code, out, _ = cli("export", "platform_fib", "--format", "csv", "--out", str(tmp_path / "fib.csv"))
    assert code == 0 and out.startswith(f"wrote {len(bdc.platform_fib())} rows")
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "fib.csv", dtype=str, keep_default_na=False),
        bdc.platform_fib().astype(str),
    )
    code, _, _ = cli("export", "quality_control", "--format", "parquet", "--out", str(tmp_path / "qc.parquet"))
    assert code == 0
    exported = pq.read_table(tmp_path / "qc.parquet")
    assert exported.schema.names == TABLES["quality_control"].column_names
    assert exported.num_rows == len(bdc.quality_control(None))


def test_sql(cli):
    code, out, _ = cli("sql", "select count(*) as n from asset_basics")
    assert code == 0
    assert out.split() == ["n", str(len(bdc.asset_basics()))]


def test_search(cli):
    subject = bdc.search(modality="fib", limit=None)["subject_id"].value_counts().index[0]
    whole = bdc.search(subject_id=subject, modality="FIB", limit=None)
    assert len(whole) > 2
    code, out, err = cli("search", "--subject-id", subject, "--modality", "FIB", "--limit", "2", "--offset", "1")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "subject_id", "data_level", "modalities", "acquisition_start_time",
                                "project_name"]
    assert [line.split()[0] for line in lines[1:-1]] == whole["name"].tolist()[1:3]
    assert lines[-1] == f"(2 of {len(whole)} matching assets from offset 1)"
    assert cli("search", "--name-contains", "x' OR 1=1 --") == (0, "(0 of 0 matching assets from offset 0)\n", "")
    code, out, err = cli("search", "--qc-status", "good")
    assert (code, out) == (2, "")
    assert err == "biodata-cache search: search: qc_status='good' is not one of Pass, Pending, Fail\n"


def test_sql_is_read_only_by_default(cli, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("user,password\nroot,hunter2\n")
    for statement in (f"select * from read_csv('{secret}')", f"copy asset_basics to '{tmp_path / 'out.csv'}'"):
        code, out, err = cli("sql", statement)
        assert (code, out) == (2, "") and err.startswith("biodata-cache sql: read-only query refused: "), err
        assert err.count("\n") == 1 and "--no-read-only" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret.csv"]
    code, out, _ = cli("sql", f"select password from read_csv('{secret}')", "--no-read-only")
    assert code == 0 and out.split() == ["password", "hunter2"]
    assert cli("sql", "select count(*) as n from asset_basics", "--read-only")[1].split() == [
        "n", str(len(bdc.asset_basics()))
    ]


def test_errors_exit_nonzero_with_a_message(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = cli("show", "asset_basics", root=str(tmp_path / "empty"))
    assert code == 2
    assert f"table asset_basics not found in version folder {VERSION}" in err and "get_cache_versions()" in err
    code, _, err = cli("show", "platform_fib", "--subject", "1")
    assert code == 2 and "table platform_fib has no subject_id column" in err
    code, _, err = cli("info", "nope")
    assert code == 2 and "unknown table 'nope'" in err


def test_global_options_after_the_command(cli, client_local_cache, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    before = cli("--backend", "LOCAL", "--root", client_local_cache, "tables", root=None)
    assert before[0] == 0 and before[1]
    assert cli("tables", "--backend", "LOCAL", "--root", client_local_cache, root=None) == before
    code, out, _ = cli("sql", "select count(*) n from platform_qc", "--backend", "LOCAL", "--root", client_local_cache,
                       root=None)
    assert code == 0 and out.split() == ["n", str(len(bdc.platform_qc()))]
    code, _, err = cli("tables", "--backend", "LOCAL", root=None)  # the default root, relative to this folder
    assert code == 2 and f"cache root {tmp_path}/.biodata-cache does not exist; set BIODATA_CACHE_ROOT" in err


SQL_ADVICE = (
    "fix it: each table is a view named like the table (`biodata-cache tables`), custom tables are custom.<name>"
)
OUT_ADVICE = "give an --out in a folder you can write to"


@pytest.mark.parametrize(
    ("args", "beginning", "advice"),
    [
        (["sql", "selec 1"], 'sql: DuckDB could not run the statement (Parser Error: syntax error at or near "selec"',
         SQL_ADVICE),
        (["sql", "select nope from asset_basics"],
         'sql: DuckDB could not run the statement (Binder Error: Referenced column "nope" not found', SQL_ADVICE),
        (["sql", "select * from nope"], f"sql: table nope not found in version folder {VERSION}",
         "query the tables unique_project_names, "),
        (["export", "asset_basics", "--format", "csv", "--out", "{tmp}/no/such/folder/a.csv"],
         "export: could not write {tmp}/no/such/folder/a.csv (", OUT_ADVICE),
        (["export", "asset_basics", "--format", "parquet", "--out", "{tmp}"], "export: could not write {tmp} (",
         OUT_ADVICE),
        (["--backend", "ftp", "versions"], "versions: cache backend 'FTP' is not one of S3, LOCAL, MEMORY", ""),
    ],
)
def test_expected_errors_are_one_line_and_exit_2(cli, tmp_path, args, beginning, advice):
    args = [arg.format(tmp=tmp_path) for arg in args]
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert err.startswith(f"biodata-cache {beginning.format(tmp=tmp_path)}") and advice in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    code, _, err = cli(*args, "--verbose")
    assert code == 2 and err.startswith("Traceback") and err.splitlines()[-1].startswith("biodata-cache ")


def test_local_copy_downloads_show_progress(client_s3_cache, aws_env, cli, tmp_path):
    code, out, err = cli("--local-copy", str(tmp_path / "copy"), "show", "asset_basics", "--limit", "1",
                         root=client_s3_cache)
    assert code == 0 and out.splitlines()[-1] == f"({len(bdc.asset_basics())} rows)"
    assert "downloading asset_basics" in err


def test_console_script_runs(client_local_cache):
    script = Path(sys.executable).parent / "biodata-cache"
    result = subprocess.run(
        [str(script), "--backend", "LOCAL", "--root", client_local_cache, "sql",
         "select count(distinct platform) n from platform_qc"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["n", "5"]
