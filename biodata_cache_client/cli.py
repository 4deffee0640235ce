"""`biodata-cache`: the cache from the command line (versions, tables, info, show, export, sql).

The global options override the environment like `configure(...)`. Downloads into a local copy
(`--local-copy`) show progress bars.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache_client.config import configure
from biodata_cache_client.frames import read_schema, to_frame
from biodata_cache_client.reader import CacheReadError, TableNotFoundError, current_reader, table_spec
from biodata_cache_client.sql import query
from biodata_cache_client.tables import cache_info, get_cache_registry

USER_ERRORS = (TableNotFoundError, CacheReadError, ValueError, PermissionError)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure(
        backend=args.backend,
        root=args.root,
        version=args.cache_version,
        local_copy=args.local_copy,
        offline=args.offline or None,
    )
    try:
        args.run(args)
    except USER_ERRORS as error:
        print(f"biodata-cache: {error}", file=sys.stderr)
        return 1
    return 0


def _versions(args) -> None:
    reader = current_reader()
    selected = reader.version()
    for version in reader.versions():
        print(f"{'*' if version == selected else ' '} {version}")


def _tables(args) -> None:
    tables = get_cache_registry()["tables"]
    if not tables:
        reader = current_reader()
        raise TableNotFoundError(f"no tables published in {reader.version()} of {reader.source.description}")
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
    if args.format == "parquet":
        pq.write_table(table, args.out, compression="zstd")
    else:
        to_frame(table, spec).to_csv(args.out, index=False)
    print(f"wrote {table.num_rows} rows of {args.table} to {args.out}")


def _sql(args) -> None:
    print(query(args.statement).to_string(index=False))


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="biodata-cache", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", help="S3, LOCAL or MEMORY (BIODATA_CACHE_BACKEND)")
    parser.add_argument("--root", help="cache root: folder or s3://bucket/prefix (BIODATA_CACHE_ROOT)")
    parser.add_argument("--cache-version", help="version folder to read, e.g. bdc-v0.1 (BIODATA_CACHE_VERSION)")
    parser.add_argument("--local-copy", help="keep objects read from S3 in this folder (BIODATA_CACHE_LOCAL_COPY)")
    parser.add_argument("--offline", action="store_true", help="read only the local copy")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("versions", help="published version folders (* = the one read)").set_defaults(run=_versions)
    commands.add_parser("tables", help="tables of the version with rows and partitions").set_defaults(run=_tables)
    info = commands.add_parser("info", help="description, build manifest and columns of a table")
    info.add_argument("table")
    info.set_defaults(run=_info)
    show = commands.add_parser("show", help="print the first rows of a table")
    show.add_argument("table")
    show.add_argument("--subject", help="only this subject's rows")
    show.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    show.set_defaults(run=_show)
    export = commands.add_parser("export", help="write a table to a CSV or parquet file")
    export.add_argument("table")
    export.add_argument("--format", choices=["csv", "parquet"], required=True)
    export.add_argument("--out", required=True, help="file to write")
    export.add_argument("--subject", help="only this subject's rows")
    export.set_defaults(run=_export)
    sql = commands.add_parser("sql", help="run DuckDB SQL over the tables (each a view named like the table)")
    sql.add_argument("statement")
    sql.set_defaults(run=_sql)
    return parser


if __name__ == "__main__":
    sys.exit(main())
