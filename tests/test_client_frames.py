"""The client's conversions: list columns give exactly what `to_pylist()` gives, and `as_=` gives
each table function's rows as pandas, Arrow (declared types) or polars."""

import sys

import pandas as pd
import polars
import pyarrow as pa
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.frames import _python_lists, read_schema
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.storage import CacheStore


@pytest.mark.parametrize(
    "column",
    [
        pa.chunked_array([pa.array([["a", None], None, [], ["b"]], pa.list_(pa.string()))]),
        # sliced chunks (offsets not at zero), a chunk with nulls and one without, an empty chunk
        pa.chunked_array(
            [
                pa.array([["x"], ["a", "b"], None, [], ["c"]], pa.list_(pa.string())).slice(1, 3),
                pa.array([["d", "e", "f"], ["g"]], pa.list_(pa.string())),
                pa.array([], pa.list_(pa.string())),
            ]
        ),
        pa.chunked_array([pa.array([[1, None], None, [2]], pa.list_(pa.int64()))]),  # not strings: to_pylist
        pa.chunked_array([], pa.list_(pa.string())),
    ],
)
def test_python_lists_equal_to_pylist(column):
    assert _python_lists(column) == column.to_pylist()
    assert all(type(row) is list for row in _python_lists(column) if row is not None)


# -- as_="pandas" | "arrow" | "polars" on every table function -----------------------------------

FRAME_FUNCTIONS = {
    "asset_basics": bdc.asset_basics,
    "source_data": bdc.source_data,
    "quality_control": lambda **kw: bdc.quality_control(None, **kw),
    "platform_qc": bdc.platform_qc,
    "assets_smartspim": bdc.assets_smartspim,
    "platform_fib": bdc.platform_fib,
    "foraging_sessions": bdc.foraging_sessions,
    "behavior_curriculum": bdc.behavior_curriculum,
}
EVERY_FUNCTION = {
    **FRAME_FUNCTIONS,
    "read_table": lambda **kw: bdc.read_table("asset_basics", **kw),
    "qc": lambda **kw: bdc.qc("600015", **kw),
    "custom": lambda **kw: bdc.custom("as_formats", **kw),
    "query": lambda **kw: bdc.query("select name from asset_basics", **kw),
    "search": bdc.search,
}


@pytest.fixture
def local_cache(client_local_cache, client_settings) -> str:
    bdc.configure(root=client_local_cache)
    return client_local_cache


def stored_table(root: str, name: str) -> pa.Table:
    """The table as the pipeline's store reads it back, partitions in order, the partition key from the path."""
    spec = TABLES[name]
    store = CacheStore(root)
    if not spec.partitioned:
        return store.read_table(spec)
    parts = []
    for value in store.list_partitions(spec):
        part = store.read_partition(spec, value)
        if spec.partition_key not in part.column_names:
            part = part.append_column(spec.partition_key, pa.array([value] * part.num_rows, pa.string()))
        parts.append(part)
    return pa.concat_tables(parts)


@pytest.mark.parametrize("name", sorted(FRAME_FUNCTIONS))
def test_as_arrow_is_the_stored_table_with_its_declared_types(local_cache, name):
    spec = TABLES[name]
    arrow = FRAME_FUNCTIONS[name](as_="arrow")
    assert isinstance(arrow, pa.Table) and arrow.schema.equals(read_schema(spec))
    assert arrow.to_pylist() == stored_table(local_cache, name).to_pylist() and arrow.num_rows > 0
    for column in spec.columns:
        if column.categories:  # declared ordered categories stay plain strings in Arrow
            assert pa.types.is_string(arrow.schema.field(column.name).type)
    selected = FRAME_FUNCTIONS[name](columns=spec.column_names[:2], as_="arrow")
    assert selected.schema.equals(pa.schema(list(spec.schema)[:2]))


@pytest.mark.parametrize("name", sorted(FRAME_FUNCTIONS))
def test_as_polars_has_the_rows_of_the_arrow_table(local_cache, name):
    arrow = FRAME_FUNCTIONS[name](as_="arrow")
    frame = FRAME_FUNCTIONS[name](as_="polars")
    assert isinstance(frame, polars.DataFrame) and frame.columns == arrow.column_names
    assert frame.to_dicts() == arrow.to_pylist()
    for field in arrow.schema:
        if pa.types.is_list(field.type):
            assert frame.schema[field.name] == polars.List(polars.String)
        elif pa.types.is_int64(field.type):
            assert frame.schema[field.name] == polars.Int64
        elif pa.types.is_timestamp(field.type):
            assert frame.schema[field.name] == polars.Datetime("us", "UTC")


@pytest.mark.parametrize("name", sorted(FRAME_FUNCTIONS))
def test_as_pandas_is_the_default(local_cache, name):
    pd.testing.assert_frame_equal(FRAME_FUNCTIONS[name](as_="pandas"), FRAME_FUNCTIONS[name]())


def test_custom_query_and_search_take_as_(local_cache):
    written = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    bdc.custom("as_formats", written)
    pd.testing.assert_frame_equal(bdc.custom("as_formats", as_="pandas"), written)
    assert bdc.custom("as_formats", as_="arrow").to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert bdc.custom("as_formats", as_="polars").to_dicts() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    statement = "select asset_name, status from quality_control order by asset_name, status"
    arrow = bdc.query(statement, as_="arrow")
    assert isinstance(arrow, pa.Table) and arrow.schema.field("status").type == pa.string()
    pd.testing.assert_frame_equal(arrow.to_pandas(), bdc.query(statement))
    assert bdc.query(statement, as_="polars").to_dicts() == arrow.to_pylist()
    assert isinstance(bdc.search(as_="polars"), polars.DataFrame)


@pytest.mark.parametrize("name", sorted(EVERY_FUNCTION))
def test_bad_as_is_refused_in_one_line_before_reading(client_settings, tmp_path, name):
    bdc.configure(root=str(tmp_path / "no-cache-here"))  # a read would fail with TableNotFoundError
    with pytest.raises(ValueError) as error:
        EVERY_FUNCTION[name](as_="dict")
    assert str(error.value) == "as_='dict' is not a result format; use one of 'pandas', 'arrow', 'polars'"


@pytest.mark.parametrize("name", sorted(EVERY_FUNCTION))
def test_polars_missing_says_how_to_install_it(client_settings, tmp_path, monkeypatch, name):
    monkeypatch.setitem(sys.modules, "polars", None)  # `import polars` now raises ImportError
    bdc.configure(root=str(tmp_path / "no-cache-here"))
    with pytest.raises(ImportError) as error:
        EVERY_FUNCTION[name](as_="polars")
    assert str(error.value) == "as_='polars' needs polars, which is not installed: pip install 'biodata-cache[polars]'"
