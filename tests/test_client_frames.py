"""The client's fast conversion of list columns gives exactly what `to_pylist()` gives."""

import pyarrow as pa
import pytest

from biodata_cache_client.frames import _python_lists


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
