"""`biodata-cache`: the cache from the command line (versions, tables, info, show, export, search, sql).

The global options override the environment like `configure(...)` and may come before or after
the command. `sql` runs one SELECT over the tables unless given `--no-read-only` (see `query`).
Downloads into a local copy (`--local-copy`) show progress bars. An expected failure prints one
line (what failed, why, what to do) and exits with 2; `--verbose` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache_client.config import configure
from biodata_cache_client.frames import read_schema, to_frame
from biodata_cache_client.reader import CacheReadError, TableNotFoundError, current_reader, table_spec
from biodata_cache_client.asset_search import SEARCH_FILTERS, search
from biodata_cache_client.sql import query
from biodata_cache_client.tables import cache_info, get_cache_registry

EXPECTED_ERRORS = (TableNotFoundError, CacheReadError, ValueError, OSError, duckdb.Error)
ERROR_EXIT_CODE = 2
# The asset_basics columns `biodata-cache search` prints.
SEARCH_COLUMNS = ["name", "subject_id", "data_level", "modalities", "acquisition_start_time", "project_name"]
SEARCH_HELP = {
    "subject_id": "this subject's assets",
    "project_name": "this project's assets",
    "modality": "assets with this modality (case-insensitive), e.g. SPIM",
    "data_level": "raw or derived",
    "name_contains": "assets whose name contains this text (case-insensitive)",
    "acquired_after": "acquisition started at or after this ISO date or time (naive: UTC)",
    "acquired_before": "acquisition started before this ISO date or time (naive: UTC)",
    "qc_status": "Pass, Pending or Fail: assets whose worst QC status is at most this",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configure(
            backend=args.backend,
            root=args.root,
            version=args.cache_version,
            local_copy=args.local_copy,
            offline=args.offline or None,
        )
        args.run(args)
    except EXPECTED_ERRORS as error:
        if args.verbose:
            traceback.print_exc()
        print(f"biodata-cache {args.command}: {_one_line(error)}", file=sys.stderr)
        return ERROR_EXIT_CODE
    return 0


def _versions(args) -> None:
    reader = current_reader()
    missing_root = reader.missing_root()
    if missing_root:
        raise TableNotFoundError(missing_root)
    selected = reader.version()
    for version in reader.versions():
        print(f"{'*' if version == selected else ' '} {version}")


def _tables(args) -> None:
    tables = get_cache_registry()["tables"]
    if not tables:
        reader = current_reader()
        raise TableNotFoundError(
            reader.missing_root()
            or f"no tables published in {reader.version()} of {reader.source.description}; "
            "`biodata-cache versions` lists the published versions"
        )
    for table in tables:
        build = table.get("build", {})
        partitions = f"{build['partitions']} partitions" if table["partitioned"] and "partitions" in build else ""
        print(f"{table['name']:<22} {build.get('row_count', '?'):>9} rows  {partitions}".rstrip())


def _info(args) -> None:
    info = cache_info(args.table)
    entry = next(t for t in get_cache_registry()["tables"] if t["name"] == args.table)
    print(f"{args.table}: {entry['description']}")
    for key in ("version", "location", "built_at", "source", "rows", "partitions", "pipeline_version"):
        if info[key] is not None:
            print(f"  {key:<17} {info[key]}")
    print("  columns:")
    for column in entry["columns"]:
        print(f"    {column['name']:<26} {column['description']}")


def _show(args) -> None:
    spec = table_spec(args.table)
    table = _read(args.table, args.subject)
    print(to_frame(table.slice(0, args.limit), spec).to_string(index=False))
    print(f"({table.num_rows} rows)")


def _export(args) -> None:
    spec = table_spec(args.table)
    table = _read(args.table, args.subject)
    try:
        if args.format == "parquet":
            pq.write_table(table, args.out, compression="zstd")
        else:
            to_frame(table, spec).to_csv(args.out, index=False)
    except OSError as error:
        raise OSError(f"could not write {args.out} ({error}); give an --out in a folder you can write to") from error
    print(f"wrote {table.num_rows} rows of {args.table} to {args.out}")


def _search(args) -> None:
    filters = {name: getattr(args, name) for name in SEARCH_FILTERS if getattr(args, name) is not None}
    rows = search(**filters, limit=args.limit, offset=args.offset)
    if len(rows):
        print(rows[SEARCH_COLUMNS].to_string(index=False))
    print(f"({len(rows)} of {rows.attrs['total']} matching assets from offset {args.offset})")


def _sql(args) -> None:
    try:
        rows = query(args.statement, read_only=args.read_only)
    except duckdb.Error as error:
        raise ValueError(
            f"DuckDB could not run the statement ({_one_line(error)}); fix it: each table is a view named like "
            "the table (`biodata-cache tables`), custom tables are custom.<name>"
        ) from error
    print(rows.to_string(index=False))


def _read(name: str, subject: str | None) -> pa.Table:
    """The whole table, or the rows of one subject (quality_control: only that partition)."""
    spec = table_spec(name)
    reader = current_reader()
    if subject is None:
        return reader.read(spec)
    if spec.partition_key == "subject_id":
        return reader.read(spec, partitions=[subject])
    if "subject_id" not in read_schema(spec).names:
        raise ValueError(f"table {name} has no subject_id column; --subject does not apply")
    return reader.read(spec, where=pc.field("subject_id") == subject)


def _one_line(error: BaseException) -> str:
    """The error's message on one line (DuckDB's caret lines under the statement dropped)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip(" ^"))


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes; after the command (`suppress`) only given ones are set."""
    options = argparse.ArgumentParser(add_help=False)
    unset = {"default": argparse.SUPPRESS} if suppress else {}
    options.add_argument("--backend", **unset, help="S3, LOCAL or MEMORY (BIODATA_CACHE_BACKEND)")
    options.add_argument("--root", **unset, help="cache root: folder or s3://bucket/prefix (BIODATA_CACHE_ROOT)")
    options.add_argument(
        "--cache-version", **unset, help="version folder to read, e.g. bdc-v0.1 (BIODATA_CACHE_VERSION)"
    )
    options.add_argument(
        "--local-copy", **unset, help="keep objects read from S3 in this folder (BIODATA_CACHE_LOCAL_COPY)"
    )
    options.add_argument("--offline", action="store_true", **unset, help="read only the local copy")
    options.add_argument("--verbose", action="store_true", **unset, help="print the traceback of a failure")
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biodata-cache", description=__doc__.splitlines()[0], parents=[_global_options(suppress=False)]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    after_command = [_global_options(suppress=True)]

    def command(name: str, summary: str, run) -> argparse.ArgumentParser:
        subparser = commands.add_parser(name, help=summary, parents=after_command)
        subparser.set_defaults(run=run)
        return subparser

    command("versions", "published version folders (* = the one read)", _versions)
    command("tables", "tables of the version with rows and partitions", _tables)
    info = command("info", "description, build manifest and columns of a table", _info)
    info.add_argument("table")
    show = command("show", "print the first rows of a table", _show)
    show.add_argument("table")
    show.add_argument("--subject", help="only this subject's rows")
    show.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    export = command("export", "write a table to a CSV or parquet file", _export)
    export.add_argument("table")
    export.add_argument("--format", choices=["csv", "parquet"], required=True)
    export.add_argument("--out", required=True, help="file to write")
    export.add_argument("--subject", help="only this subject's rows")
    search_command = command("search", "assets (asset_basics rows) matching every filter given", _search)
    for name in SEARCH_FILTERS:
        search_command.add_argument(f"--{name.replace('_', '-')}", help=SEARCH_HELP[name])
    search_command.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    search_command.add_argument("--offset", type=int, default=0, help="matching rows to skip first (default 0)")
    sql = command("sql", "run DuckDB SQL over the tables (each a view named like the table)", _sql)
    sql.add_argument("statement")
    sql.add_argument(
        "--read-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one SELECT over the tables, no file, URL or database access (default); --no-read-only runs any statement",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
