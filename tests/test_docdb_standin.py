"""The stand-in projects `find` results as MongoDB does, arrays of scalars and nested arrays included."""

from __future__ import annotations

import json

import requests

from docdb_standin import DocDbStandIn

INVENTORY = {  # the manual's "Project Fields to Return from Query" collection, one document
    "_id": 5,
    "item": "postcard",
    "status": "A",
    "size": {"h": 10, "w": 15.25, "uom": "cm"},
    "instock": [{"warehouse": "B", "qty": 15}, {"warehouse": "C", "qty": 35}],
}
NESTED = {  # from mongodb/mongo jstests/core/projection_semantics.js
    "_id": 1,
    "a": [
        ["x", {"b": 1}, {"b": 2, "c": 2}, "x"],
        [[{"b": 1}]],
        [{"b": 1}, [{"b": 2}], [[{"b": [2]}]]],
    ],
}

# (document, projection, the document MongoDB returns): the manual's examples, then the dotted-path
# semantics MongoDB's own tests pin down (jstests/core/projection_semantics.js; SERVER-6527).
EXAMPLES = [
    (INVENTORY, {"item": 1, "status": 1}, {"_id": 5, "item": "postcard", "status": "A"}),
    (INVENTORY, {"item": 1, "status": 1, "_id": 0}, {"item": "postcard", "status": "A"}),
    (INVENTORY, {"status": 0, "instock": 0}, {"_id": 5, "item": "postcard", "size": INVENTORY["size"]}),
    (INVENTORY, {"item": 1, "status": 1, "size.uom": 1},
     {"_id": 5, "item": "postcard", "status": "A", "size": {"uom": "cm"}}),
    (INVENTORY, {"size.uom": 0}, {**INVENTORY, "size": {"h": 10, "w": 15.25}}),
    (INVENTORY, {"item": 1, "status": 1, "instock.qty": 1},
     {"_id": 5, "item": "postcard", "status": "A", "instock": [{"qty": 15}, {"qty": 35}]}),
    ({"_id": 1, "a": [1, {"b": 2}, {"c": 3}]}, {"a.b": 1}, {"_id": 1, "a": [{"b": 2}, {}]}),
    # Scalars in an array are dropped, sub-documents without the field stay as {}, nested arrays stay.
    ({"_id": 1, "a": ["scalar", {}, "scalar", {"c": 1}]}, {"a.b": 1, "_id": 0}, {"a": [{}, {}]}),
    ({"_id": 1, "a": [None]}, {"a.b": 1, "_id": 0}, {"a": []}),
    ({"_id": 1, "a": [[1, 2, 3]]}, {"a.b": 1, "_id": 0}, {"a": [[]]}),
    ({"_id": 1, "a": [[1, {"b": 1}, {"b": 2, "c": 2}, "scalar"]]}, {"a.b": 1, "_id": 0}, {"a": [[{"b": 1}, {"b": 2}]]}),
    (NESTED, {"a.b": 1, "_id": 0}, {"a": [[{"b": 1}, {"b": 2}], [[{"b": 1}]], [{"b": 1}, [{"b": 2}], [[{"b": [2]}]]]]}),
    (NESTED, {"a.b.c": 1, "_id": 0}, {"a": [[{}, {}], [[{}]], [{}, [{}], [[{"b": []}]]]]}),
    ({"_id": 1, "a": [[], [[], [], [1], [{"c": 1}]], {"b": 1}]}, {"a.b": 1, "_id": 0},
     {"a": [[], [[], [], [], [{}]], {"b": 1}]}),
    ({"_id": 1, "a": [1, {"b": [[1, 2], [{}], 2]}, 2]}, {"a.b.c": 1, "_id": 0}, {"a": [{"b": [[], [{}]]}]}),
    ({"_id": 1, "a": [[1, 2], [{"b": [[1, 2], [{"c": [[1, 2], [{}], 2]}], 2]}], 2]}, {"a.b.c": 1, "_id": 0},
     {"a": [[], [{"b": [[], [{"c": [[1, 2], [{}], 2]}]]}]]}),
    ({"_id": 1, "a": [{"b": 1, "c": 2}, "extra", {"b": 3, "c": 4}]}, {"a.b": 1, "a.c": 1, "_id": 0},
     {"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]}),
    # A field that is missing, or a scalar where the path goes on, gives no field.
    ({"_id": 1, "a": "scalar"}, {"a.b": 1}, {"_id": 1}),
    ({"_id": 1, "a": {"b": "scalar"}}, {"a.b.c": 1, "_id": 0}, {"a": {}}),
    ({"_id": 1, "a": [{"b": "scalar"}]}, {"a.b.c": 1, "_id": 0}, {"a": [{}]}),
    ({"_id": 1, "b": "other"}, {"a.b": 1}, {"_id": 1}),
    ({"_id": 1, "a": {"b": "demo", "_id": "extra"}}, {"a.b": 1, "_id": 0}, {"a": {"b": "demo"}}),
    # An exclusion keeps scalars and goes through nested arrays too.
    ({"_id": 1, "a": ["scalar", {"b": 1, "c": 1, "d": 1}, {"b": 2, "c": 2}, {"b": 3}]}, {"a.b": 0},
     {"_id": 1, "a": ["scalar", {"c": 1, "d": 1}, {"c": 2}, {}]}),
    ({"_id": 1, "a": [[], [{"b": [[1, 2], {"c": 1, "d": 1}]}]]}, {"a.b.c": 0},
     {"_id": 1, "a": [[], [{"b": [[1, 2], {"d": 1}]}]]}),
    ({"_id": 1, "a": 1, "b": 1}, {"_id": 0}, {"a": 1, "b": 1}),
    ({"_id": 1, "a": 1}, {"_id": 1}, {"_id": 1}),
]


def test_find_projects_as_the_mongodb_manual_and_its_tests_show():
    for document, spec, expected in EXAMPLES:
        assert DocDbStandIn([document]).find({"projection": spec}) == [expected], (document, spec)


def test_projections_through_nested_arrays_are_answered_over_http_and_bad_ones_rejected():
    """A projection through nested arrays gets 200 (it got 500); one MongoDB rejects gets 400."""
    with DocDbStandIn([NESTED, {"_id": 2, "a": {"b": {"c": 1, "d": 2}}}]) as standin:
        def find(spec: dict, query: dict | None = None) -> requests.Response:
            params = {"projection": json.dumps(spec), "filter": json.dumps(query or {}), "sort": json.dumps({"_id": 1})}
            return requests.get(f"http://127.0.0.1:{standin.port}{standin.base_path}/find", params=params, timeout=5)

        answer = find({"a.b.c": 1})
        assert answer.status_code == 200
        assert answer.json() == [
            {"_id": 1, "a": [[{}, {}], [[{}]], [{}, [{}], [[{"b": []}]]]]},
            {"_id": 2, "a": {"b": {"c": 1}}},
        ]
        for spec, message in [
            ({"a": 1, "b": 0}, "Cannot do exclusion on field b in inclusion projection"),
            ({"a.b": 1, "a": 1}, "Path collision at a"),
            ({"a": 1, "a.b": 1}, "Path collision at a.b"),
        ]:
            rejected = find(spec)
            assert rejected.status_code == 400 and message in rejected.json()["message"], spec
        # Projection operators stay with mongomock.
        assert find({"_id": 0, "a": {"$slice": 1}}, {"_id": 1}).json() == [{"a": [NESTED["a"][0]]}]


def test_the_stand_in_is_not_in_the_installed_package():
    """It needs the test-only mongomock: it lives with the tests, and no pipeline module imports it."""
    import importlib.util
    from pathlib import Path

    import biodata_cache_pipeline

    assert importlib.util.find_spec("biodata_cache_pipeline.docdb_standin") is None
    package = Path(biodata_cache_pipeline.__file__).parent
    imports = ("import mongomock", "from mongomock", "docdb_standin import", "import docdb_standin")
    assert not [p for p in package.rglob("*.py") if any(i in p.read_text() for i in imports)]
