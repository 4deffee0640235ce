"""platform_fib: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from fixture_records import needs_fixture_records
from table_records import all_records, assert_declared, column, load_fixture, mods, norm, rows, v2

from biodata_cache_client.schema.platform_fib import PLATFORM_FIB
from biodata_cache_pipeline.tables.platform_fib import build_platform_fib


@needs_fixture_records
def test_platform_fib_fiber_example3():
    raw = load_fixture("v2/fiber_example3.json")
    table = build_platform_fib(norm(raw))
    assert_declared(table, PLATFORM_FIB)
    name = raw["name"]
    measurements = {0: ("calcium", "control", "missing"), 1: ("calcium", "control", "missing"),
                    2: ("dopamine", "control", "acetylcholine"), 3: ("dopamine", "control", "acetylcholine")}
    structures = {0: "PL", 1: "PL", 2: "ACB", 3: "ACB"}
    expected = []
    for i in range(4):
        for colour, measurement in zip(("Green", "Isosbestic", "Red"), measurements[i]):
            expected.append({"asset_name": name, "fiber": f"Fiber {i}", "patch_cord": f"Patch Cord {i}",
                             "channel": f"Fiber_{i}_{colour}", "intended_measurement": measurement,
                             "targeted_structure": structures[i]})
    assert rows(table) == expected
    assert table.num_rows == 12


@needs_fixture_records
def test_platform_fib_only_fib_assets_from_fixtures():
    table = build_platform_fib(all_records())
    assert set(column(table, "asset_name")) == {"808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55"}


def _fib_record(name="fib_asset", modalities=("fib",), level="raw"):
    def implant(fiber, structure):
        p = {"object_type": "Probe implant", "implanted_device": {"name": fiber}}
        if structure is not None:
            p["device_config"] = {"primary_targeted_structure": {"acronym": structure, "name": "x"}}
        return p

    procedures = [
        {"procedures": [implant("Fiber_0", "root"), implant("Fiber_1", None),
                        {"object_type": "Brain injection"}]},
        {"procedures": [implant("Fiber_2", "VTA"), implant("Fiber_3", "NAc")]},
    ]
    streams = [
        {"connections": [{"source_device": "Patch Cord A", "target_device": "Fiber_0"},
                         {"source_device": "Patch Cord B", "target_device": "Fiber 1"},
                         {"source_device": "Patch Cord D", "target_device": "Fiber 9"},
                         {"source_device": "Patch Cord E", "target_device": "Fiber 3"}],
         "configurations": [
             {"object_type": "Light emitting diode config", "device_name": "Patch Cord A",
              "channels": [{"channel_name": "LED", "intended_measurement": "x"}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord B",
              "channels": [{"channel_name": "Iso", "intended_measurement": "control"}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord A",
              "channels": [{"channel_name": "Red", "intended_measurement": "None"},
                           {"channel_name": "Green", "intended_measurement": "dopamine"},
                           {"intended_measurement": None}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord D",
              "channels": [{"channel_name": "Green", "intended_measurement": "calcium"}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord Z",
              "channels": [{"channel_name": "Green", "intended_measurement": "calcium"}]},
         ]},
        {"connections": [{"source_device": "Patch Cord C", "target_device": "Fiber_2"}],
         "configurations": [{"object_type": "Patch cord config", "device_name": "Patch Cord C",
                             "channels": [{"channel_name": "Green", "intended_measurement": "dopamine"}]}]},
    ]
    return v2(name, {"data_description.modalities": mods(*modalities), "data_description.data_level": level,
                     "procedures.subject_procedures": procedures, "acquisition.data_streams": streams})


def test_platform_fib_rules():
    """Fibers compared with underscores as spaces; `missing` for root/absent structures and absent
    channel strings; channels whose intended_measurement is the string "None" are skipped; patch
    cords with no connection to a known fiber give no row; Fiber 3 has no patch cord config."""
    table = build_platform_fib(norm(_fib_record()))
    assert_declared(table, PLATFORM_FIB)
    assert [tuple(r.values()) for r in rows(table)] == [
        ("fib_asset", "Fiber 0", "Patch Cord A", "Green", "dopamine", "missing"),
        ("fib_asset", "Fiber 0", "Patch Cord A", "missing", "missing", "missing"),
        ("fib_asset", "Fiber 1", "Patch Cord B", "Iso", "control", "missing"),
        ("fib_asset", "Fiber 2", "Patch Cord C", "Green", "dopamine", "VTA"),
    ]


def test_platform_fib_asset_selection_and_order():
    records = norm(
        _fib_record("z_asset", modalities=("FIB", "behavior"), level="derived"),
        _fib_record("a_asset", modalities=("fib",)),
        _fib_record("behavior_only", modalities=("behavior",)),
        _fib_record("fiber_like", modalities=("fiber",)),
    )
    table = build_platform_fib(records)
    assert sorted(set(column(table, "asset_name"))) == ["a_asset", "z_asset"]
    assert column(table, "asset_name") == ["a_asset"] * 4 + ["z_asset"] * 4


def test_platform_fib_unnamed_patch_cord_never_crashes():
    """Reading: a connection without a source device, or a patch cord config without a device name,
    cannot tie a patch cord to a fiber: no row (and no crash)."""
    raw = _fib_record()
    stream = raw["acquisition"]["data_streams"][1]
    stream["connections"].append({"target_device": "Fiber 2"})
    stream["configurations"].append({"object_type": "Patch cord config",
                                     "channels": [{"channel_name": "Red", "intended_measurement": "x"}]})
    table = build_platform_fib(norm(raw))
    assert None not in column(table, "patch_cord")
    assert table.num_rows == 4
