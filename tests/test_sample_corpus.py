"""The sample corpus generator: determinism, coverage of every table's inputs, layouts, CLI, scale."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fixture_records import FIXTURE_RECORDS, needs_fixture_records
from biodata_cache_pipeline import sample_corpus
from biodata_cache_pipeline.sample_corpus import CorpusSummary, generate_corpus, main

TIMESTAMP = r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}"
ASSET_NAME = re.compile(rf"^.+_{TIMESTAMP}$")
DERIVED_NAME = re.compile(rf"^(?P<source>.+?_{TIMESTAMP})_(?P<process>[A-Za-z-]+)_{TIMESTAMP}$")
FORAGING_TASK = re.compile(r"^(Uncoupled|Coupled)( Without)? Baiting")


# ---- reading the corpus the way the embedded-default source does ------------------------------


def get(obj: object, *path: str) -> object:
    """Value at a dotted path, None when a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class Asset:
    """One asset folder as found on disk, with the fields the tests look at (1.x mapped to 2.x)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
        record_file = folder / "metadata.nd.json"
        self.record: dict | None
        if record_file.exists():
            try:
                self.record = json.loads(record_file.read_bytes())
            except json.JSONDecodeError:
                self.layout, self.record = "unreadable", None
                return
            self.layout = "v2" if "_created" in self.record else "v1_single_file"
        else:
            self.layout = "v1_core_files"
            self.record = {p.stem: json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))}

    @property
    def is_v1(self) -> bool:
        return self.layout.startswith("v1")

    @property
    def malformed(self) -> bool:
        r = self.record
        if r is None or self.is_v1:
            return False
        return (not isinstance(r.get("subject"), dict)
                or not isinstance(get(r, "data_description", "modalities"), list)
                or not isinstance(get(r, "data_description", "investigators"), list)
                or not isinstance(get(r, "acquisition", "acquisition_start_time"), str)
                or not isinstance(get(r, "processing", "data_processes"), list)
                or (r.get("quality_control") is not None and not isinstance(get(r, "quality_control", "metrics"), list)))

    @property
    def acquisition(self) -> dict:
        if self.is_v1:
            return self.record.get("session") or self.record.get("acquisition") or {}
        return self.record["acquisition"]

    @property
    def modalities(self) -> list[str]:
        key = "modality" if self.is_v1 else "modalities"
        return [m["abbreviation"] for m in self.record["data_description"][key]]

    @property
    def data_level(self) -> str:
        return self.record["data_description"]["data_level"]

    @property
    def acquisition_type(self) -> str | None:
        return self.acquisition.get("session_type" if self.is_v1 else "acquisition_type")

    @property
    def instrument_id(self) -> str | None:
        if self.is_v1:
            return self.acquisition.get("rig_id") or self.acquisition.get("instrument_id")
        return self.acquisition.get("instrument_id")

    @property
    def source_data(self) -> list[str]:
        description = self.record["data_description"]
        if self.is_v1:
            return [description["input_data_name"]] if description.get("input_data_name") else []
        return description.get("source_data") or []

    @property
    def subject_id(self) -> str:
        return self.record["subject"]["subject_id"]

    @property
    def metric_count(self) -> int:
        quality_control = self.record.get("quality_control")
        if not quality_control:
            return 0
        if self.is_v1:
            return sum(len(e["metrics"]) for e in quality_control["evaluations"])
        return len(quality_control["metrics"])


def load_assets(root: Path) -> list[Asset]:
    return [Asset(p) for p in sorted(root.iterdir()) if p.is_dir() and ASSET_NAME.match(p.name)]


def usable(assets: list[Asset]) -> list[Asset]:
    return [a for a in assets if a.record is not None and not a.malformed]


def file_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Corpus:
    def __init__(self, root: Path, summary: CorpusSummary, seconds: float) -> None:
        self.root = root
        self.summary = summary
        self.seconds = seconds
        self.assets = load_assets(root)
        self.good = usable(self.assets)
        self.by_name = {a.name: a for a in self.assets}


def build(root: Path, assets: int, seed: int) -> Corpus:
    started = time.perf_counter()
    summary = generate_corpus(root, assets, seed)
    return Corpus(root, summary, time.perf_counter() - started)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build(tmp_path_factory.mktemp("small") / "corpus", 200, seed=0)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build(tmp_path_factory.mktemp("large") / "corpus", 5000, seed=3)


# ---- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files_and_other_seeds_differ(small: Corpus, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_corpus(again, 200, seed=0)
    assert file_tree(again) == file_tree(small.root)

    other = tmp_path / "other"
    generate_corpus(other, 200, seed=1)
    assert {a.name for a in load_assets(other)} != {a.name for a in small.assets}


def test_smaller_corpus_is_a_prefix_of_a_larger_one(small: Corpus, tmp_path: Path) -> None:
    generate_corpus(tmp_path / "c", 80, seed=0)
    prefix = file_tree(tmp_path / "c")
    full = file_tree(small.root)
    asset_files = {path: content for path, content in prefix.items() if ASSET_NAME.match(path.split("/")[0])}
    assert len({path.split("/")[0] for path in asset_files}) == 80
    assert all(full.get(path) == content for path, content in asset_files.items())


def test_determinism_holds_across_processes(tmp_path: Path) -> None:
    """Hash randomisation differs per process; the files must not depend on it."""
    script = "import sys; from biodata_cache_pipeline.sample_corpus import generate_corpus; " \
             "generate_corpus(sys.argv[1], 120, 7)"
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True)
    assert file_tree(tmp_path / "a") == file_tree(tmp_path / "b")


# ---- coverage of the tables' inputs -------------------------------------------------------------


def test_every_platform_is_present_in_a_small_corpus(small: Corpus) -> None:
    found: Counter[str] = Counter()
    for a in small.good:
        modalities = set(a.modalities)
        instrument = a.instrument_id or ""
        if "behavior" in modalities and FORAGING_TASK.match(a.acquisition_type or ""):
            found["dynamic_foraging"] += 1
        if "behavior" in modalities and a.acquisition_type == "AindVrForaging":
            found["vr_foraging"] += 1
        if "fib" in modalities:
            found["fib"] += 1
        if "SPIM" in modalities and a.data_level == "raw" and "SmartSPIM" in instrument:
            found["smartspim_raw"] += 1
        if "SPIM" in modalities and "_stitched_" in a.name:
            found["smartspim_stitched"] += 1
        if "SPIM" in modalities and "exa" in instrument.lower():
            found["exaspim"] += 1
        if "ecephys" in modalities:
            found["ecephys_sorted" if "_sorted_" in a.name else "ecephys"] += 1
        for modality in ("pophys", "slap2"):
            found[modality] += modality in modalities
    expected = {"dynamic_foraging", "vr_foraging", "fib", "smartspim_raw", "smartspim_stitched", "exaspim",
                "ecephys", "ecephys_sorted", "pophys", "slap2"}
    assert expected <= {platform for platform, count in found.items() if count}


def test_subjects_have_several_assets_and_some_have_no_metrics(small: Corpus, large: Corpus) -> None:
    per_subject = Counter(a.subject_id for a in small.good)
    assert 10 <= len(per_subject) <= 60
    assert sum(per_subject.values()) / len(per_subject) >= 3

    metrics = defaultdict(int)
    for a in large.good:
        metrics[a.subject_id] += a.metric_count
    without = [s for s, count in metrics.items() if count == 0]
    assert without and len(without) < len(metrics) / 2


def test_fib_records_have_implants_and_patch_cords(large: Corpus) -> None:
    structures = Counter()
    measurements = set()
    fib_v2 = [a for a in large.good if a.layout == "v2" and "fib" in a.modalities]
    assert fib_v2
    for a in fib_v2:
        implants = [p for sp in a.record["procedures"]["subject_procedures"] for p in sp["procedures"]
                    if p["object_type"] == "Probe implant"]
        fibers = [p["implanted_device"]["name"] for p in implants]
        assert 2 <= len(fibers) <= 4 and all(re.fullmatch(r"Fiber_\d", f) for f in fibers)
        for p in implants:
            structures[get(p, "device_config", "primary_targeted_structure", "acronym") or "absent"] += 1
        for stream in a.record["acquisition"]["data_streams"]:
            cords = {c["source_device"]: c["target_device"].replace("_", " ") for c in stream["connections"]}
            for config in stream["configurations"]:
                if config["object_type"] == "Patch cord config":
                    assert cords[config["device_name"]] in {f.replace("_", " ") for f in fibers}
                    measurements |= {ch["intended_measurement"] for ch in config["channels"]}
    assert {"root", "absent"} <= set(structures) and len(structures) >= 4
    assert {"calcium", "control", None, "None"} <= measurements


def test_both_v1_layouts_are_present_with_v1_fields(small: Corpus, large: Corpus) -> None:
    layouts = Counter(a.layout for a in small.assets)
    assert layouts["v1_single_file"] and layouts["v1_core_files"]

    for a in (a for a in small.assets if a.layout == "v1_core_files"):
        assert not (a.folder / "metadata.nd.json").exists()
        assert {"subject", "data_description", "procedures", "processing"} <= set(a.record)
        assert a.record["data_description"]["name"] == a.name
        assert isinstance(a.record["data_description"]["modality"], list)
        assert "genotype" in a.record["subject"] and "subject_details" not in a.record["subject"]
        assert isinstance(a.acquisition["experimenter_full_name"], list)
        assert "session_start_time" in a.acquisition
        assert isinstance(a.record["processing"]["processing_pipeline"]["data_processes"], list)
        assert ("rig" in a.record and "session" in a.record) or "acquisition" in a.record
    for a in (a for a in small.assets if a.layout == "v1_single_file"):
        assert {"created", "last_modified", "external_links"} <= set(a.record)
        assert not {"_created", "_last_modified", "other_identifiers"} & set(a.record)

    v1_share = sum(a.is_v1 for a in large.assets) / len(large.assets)
    assert 0.10 <= v1_share <= 0.20
    v1_qc = [a.record["quality_control"] for a in large.good if a.is_v1 and a.record.get("quality_control")]
    assert v1_qc and all("modality" in e and "stage" in e and e["metrics"] for q in v1_qc for e in q["evaluations"])


def test_broken_records_and_non_asset_entries(small: Corpus, large: Corpus) -> None:
    for corpus in (small, large):
        unreadable = [a for a in corpus.assets if a.layout == "unreadable"]
        malformed = [a for a in corpus.assets if a.malformed]
        assert unreadable and malformed
        assert len(unreadable) + len(malformed) <= 0.03 * len(corpus.assets)
        assert (corpus.summary.malformed, corpus.summary.unreadable) == (len(malformed), len(unreadable))

    top_level = {p.name for p in small.root.iterdir()}
    assert {"README.txt", "scratch", "_foraging"} <= top_level
    assert top_level - {a.name for a in small.assets} == {"README.txt", "scratch", "_foraging"}


def test_derived_assets_name_and_point_to_existing_raw_folders(small: Corpus, large: Corpus) -> None:
    for corpus in (small, large):
        derived = [a for a in corpus.good if a.data_level == "derived"]
        assert derived
        for a in derived:
            match = DERIVED_NAME.match(a.name)
            assert match and a.source_data == [match["source"]], a.name
            assert (corpus.root / match["source"]).is_dir()
            source = corpus.by_name[match["source"]]
            assert source.record is None or source.malformed or source.data_level == "raw"


def test_smartspim_open_data_files(small: Corpus, large: Corpus) -> None:
    def raw_smartspim(corpus: Corpus) -> list[Asset]:
        return [a for a in corpus.good if a.name.startswith("SmartSPIM_") and a.data_level == "raw"]

    new_path = Path("SPIM/derivatives/neuroglancer_config.json")
    old_path = Path("derivatives/neuroglancer_config.json")
    assert any((a.folder / new_path).exists() or (a.folder / old_path).exists() for a in raw_smartspim(small))
    assert any(a.folder.glob("image_cell_segmentation/*/visualization/neuroglancer_config.json")
               for a in small.assets if "_stitched_" in a.name)

    kinds = Counter()
    for a in raw_smartspim(large):
        if (a.folder / new_path).exists():
            try:
                link = json.loads((a.folder / new_path).read_bytes())["ng_link"]
                assert link.startswith("https://") and a.name in link
                kinds["new"] += 1
            except json.JSONDecodeError:
                kinds["unreadable"] += 1
        elif (a.folder / old_path).exists():
            kinds["old"] += 1
        else:
            kinds["none"] += 1
    assert kinds["new"] > kinds["old"] > 0 and kinds["none"] > 0 and kinds["unreadable"] > 0

    stitched_per_raw = Counter({a.name: 0 for a in raw_smartspim(large)})
    channel_counts = Counter()
    for a in large.assets:
        match = DERIVED_NAME.match(a.name)
        if match and match["process"] == "stitched":
            stitched_per_raw[match["source"]] += 1
            channels = sorted(p.name for p in (a.folder / "image_cell_segmentation").glob("*"))
            assert set(channels) <= {"Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667"}
            for channel in channels:
                config = a.folder / "image_cell_segmentation" / channel / "visualization" / "neuroglancer_config.json"
                assert json.loads(config.read_bytes())["ng_link"].startswith("https://")
            channel_counts[len(channels)] += 1
    assert {0, 1, 2} <= set(stitched_per_raw.values())
    assert {0, 1, 2, 3} <= set(channel_counts)


def test_trainer_state_files(small: Corpus, large: Corpus) -> None:
    def trainer_state_files(a: Asset) -> list[Path]:
        return sorted(a.folder.glob("behavior/trainer_state*.json")) + \
            sorted(a.folder.glob("behavior/Logs/.launcher/TrainerState_*.json"))

    behavior_raw = [a for a in small.good if "behavior" in a.modalities and a.data_level == "raw"]
    assert any(trainer_state_files(a) for a in behavior_raw)

    forms = Counter()
    stage_in_graph = []
    for a in large.good:
        if "behavior" not in a.modalities or a.data_level != "raw":
            continue
        files = trainer_state_files(a)
        for path in files:
            forms[re.sub(r"\d+", "<n>", str(path.relative_to(a.folder)))] += 1
            state = json.loads(path.read_bytes())
            nodes = state["curriculum"]["graph"]["nodes"]
            assert state["curriculum"]["name"] and state["curriculum"]["version"]
            assert all(key.isdigit() for key in nodes)
            stage_in_graph.append(state["stage"]["name"] in {n["name"] for n in nodes.values()})
        forms["none"] += not files
    assert {"behavior/trainer_state.json", "behavior/trainer_state_<n>.json",
            "behavior/Logs/.launcher/TrainerState_<n>.json", "none"} <= set(forms)
    assert 0.9 < sum(stage_in_graph) / len(stage_in_graph) < 1


def test_foraging_session_table(small: Corpus, large: Corpus) -> None:
    table = pq.read_table(small.root / "_foraging" / "session_table.parquet")
    expected_types = {
        "subject_id": pa.string(), "session_date": pa.string(), "nwb_suffix": pa.int64(), "session": pa.int64(),
        "rig": pa.string(), "trainer": pa.string(), "task": pa.string(), "curriculum_name": pa.string(),
        "curriculum_version": pa.string(), "current_stage_actual": pa.string(), "foraging_eff": pa.float64(),
        "foraging_eff_random_seed": pa.float64(), "finished_rate": pa.float64(), "bias_naive": pa.float64(),
        "finished_trials": pa.int64(), "total_trials": pa.int64(),
    }
    assert {name: table.schema.field(name).type for name in expected_types} == expected_types
    assert set(table.column_names) - set(expected_types)  # extra columns a reader must ignore
    assert table.num_rows == small.summary.sessions > 0

    rows = table.to_pylist()
    keys = [(r["subject_id"], r["session_date"], r["nwb_suffix"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)

    foraging_raw = {(a.subject_id, a.name[-19:-9]) for a in small.good
                    if a.data_level == "raw" and FORAGING_TASK.match(a.acquisition_type or "")}
    session_keys = {(r["subject_id"], r["session_date"]) for r in rows}
    assert foraging_raw <= session_keys
    for subject_id, session_date, nwb_suffix in keys:  # each session is a raw behavior asset
        clock = f"{nwb_suffix // 10000:02d}-{nwb_suffix // 100 % 100:02d}-{nwb_suffix % 100:02d}"
        assert (small.root / f"behavior_{subject_id}_{session_date}_{clock}").is_dir()
    per_subject = defaultdict(list)
    for r in rows:
        per_subject[r["subject_id"]].append(r["session"])
    assert all(sessions == list(range(1, len(sessions) + 1)) for sessions in per_subject.values())

    trainers = {r["trainer"] for r in pq.read_table(large.root / "_foraging" / "session_table.parquet").to_pylist()}
    assert any("." in t for t in trainers) and any(t.isupper() for t in trainers)


def test_foraging_table_is_written_in_row_groups(small: Corpus, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_corpus, "FORAGING_ROWS_PER_ROW_GROUP", 10)
    generate_corpus(tmp_path / "c", 200, seed=0)
    chunked = pq.ParquetFile(tmp_path / "c" / "_foraging" / "session_table.parquet")
    assert chunked.num_row_groups > 1
    assert chunked.read().equals(pq.read_table(small.root / "_foraging" / "session_table.parquet"))


def test_quality_control_shapes(large: Corpus) -> None:
    qcs = [a.record["quality_control"] for a in large.good if a.layout == "v2" and a.record["quality_control"]]
    metrics = [m for qc in qcs for m in qc["metrics"]]
    assert {m["object_type"] for m in metrics} == {"QC metric", "Curation metric"}
    assert {type(m["tags"]).__name__ for m in metrics} == {"dict", "list", "NoneType"}
    assert {type(m["modality"]).__name__ for m in metrics} == {"dict", "str"}
    assert {type(m["value"]).__name__ for m in metrics} >= {"int", "float", "str", "dict", "bool", "NoneType"}
    assert {len(m["status_history"]) for m in metrics} == {0, 1, 2, 3}
    assert {e["status"] for m in metrics for e in m["status_history"]} == {"Pass", "Fail", "Pending"}
    severity = ["Pass", "Pending", "Fail"]
    for qc in qcs:  # status: the worst latest status of the metrics behind each tag, modality and stage key
        expected: dict[str, str] = {}
        for m in qc["metrics"]:
            latest = m["status_history"][-1]["status"] if m["status_history"] else "Pending"
            keys = [m["modality"]["abbreviation"] if isinstance(m["modality"], dict) else m["modality"], m["stage"]]
            keys += [f"{k}:{v}" for k, v in m["tags"].items()] if isinstance(m["tags"], dict) else []
            for key in keys:
                expected[key] = max(expected.get(key, "Pass"), latest, key=severity.index)
        assert qc["status"] == expected
    derived = [a for a in large.good if a.data_level == "derived"]
    raw = [a for a in large.good if a.data_level == "raw"]
    share = lambda assets: sum(bool(a.record.get("quality_control")) for a in assets) / len(assets)  # noqa: E731
    assert share(derived) > 0.5 > share(raw) > 0.1


def test_people_come_in_messy_forms(large: Corpus) -> None:
    v2 = [a.record for a in large.good if a.layout == "v2"]
    experimenters = [r["acquisition"]["experimenters"] for r in v2]
    investigators = [r["data_description"]["investigators"] for r in v2]
    assert any(isinstance(e, dict) and set(e) == {"name"} for entries in experimenters for e in entries)
    assert any(isinstance(i, str) for entries in investigators for i in entries)
    lists = [[e["name"] if isinstance(e, dict) else e for e in entries] for entries in experimenters + investigators]
    names = [n for entries in lists for n in entries]
    patterns = {
        "dotted": r"[a-z']+\.[a-z']+", "upper double space": r"[A-Z']+  [A-Z']+", "joined": r"[A-Z][a-z']+[A-Z][a-z']+",
        "email": r"[a-z.]+@alleninstitute\.org", "leading space": r" \S.*", "comma joined": r".+, .+",
        "empty": r"", "apostrophe": r".*o'brien.*", "plain": r"[A-Z][a-z]+ [A-Z][a-z']+",
    }
    missing = [form for form, pattern in patterns.items() if not any(re.fullmatch(pattern, n) for n in names)]
    assert not missing

    def first_name_beside_full_name(entries: list[str]) -> bool:
        return any(n and " " not in n and any(m.startswith(f"{n} ") for m in entries) for n in entries)

    assert any(first_name_beside_full_name(entries) for entries in lists)


def test_time_strings_come_in_mixed_forms(large: Corpus) -> None:
    starts = [a.record["acquisition"]["acquisition_start_time"] for a in large.good if a.layout == "v2"]
    forms = Counter("Z" if s.endswith("Z") else "offset" if re.search(r"[+-]\d\d:\d\d$", s) else "naive"
                    for s in starts)
    assert set(forms) == {"Z", "offset", "naive"}
    process_times = [p["start_date_time"] for a in large.good if a.layout == "v2"
                     for p in a.record["processing"]["data_processes"]]
    assert any(" " in t for t in process_times) and any("T" in t for t in process_times)


# ---- shape against the real records -------------------------------------------------------------

TABLE_PATHS = (
    "_id", "name", "location", "_created", "_last_modified", "other_identifiers.Code Ocean",
    "subject.subject_id", "subject.subject_details.genotype", "subject.subject_details.date_of_birth",
    "data_description.modalities", "data_description.project_name", "data_description.data_level",
    "data_description.investigators", "data_description.institution.abbreviation", "data_description.source_data",
    "acquisition.acquisition_start_time", "acquisition.acquisition_end_time", "acquisition.acquisition_type",
    "acquisition.experimenters", "acquisition.instrument_id", "acquisition.data_streams",
    "processing.data_processes", "processing.pipelines", "quality_control.metrics", "quality_control.status",
)


@needs_fixture_records
def test_generated_records_match_the_real_record_shapes(large: Corpus) -> None:
    real = json.loads((FIXTURE_RECORDS / "v2" / "v2_derived.json").read_bytes())
    generated = next(a.record for a in large.good if a.layout == "v2" and a.data_level == "derived"
                     and a.record.get("quality_control") and "other_identifiers" in a.record
                     and a.record["subject"]["subject_details"].get("genotype")
                     and a.record["subject"]["subject_details"].get("date_of_birth"))
    for path in TABLE_PATHS:
        keys = path.split(".")
        assert type(get(generated, *keys)) is type(get(real, *keys)), path
    real_metric, metric = real["quality_control"]["metrics"][0], generated["quality_control"]["metrics"][0]
    assert set(metric) <= set(real_metric) | {"tags"}

    fiber = json.loads((FIXTURE_RECORDS / "v2" / "fiber_example3.json").read_bytes())
    generated_fib = next(a.record for a in large.good if a.layout == "v2" and "fib" in a.modalities)

    def implant_and_patch_cord(record: dict) -> tuple[dict, dict]:
        implant = next(p for sp in record["procedures"]["subject_procedures"] for p in sp["procedures"]
                       if p["object_type"] == "Probe implant")
        patch_cord = next(c for s in record["acquisition"]["data_streams"] for c in s["configurations"]
                          if c["object_type"] == "Patch cord config")
        return implant, patch_cord

    (real_implant, real_cord), (implant, cord) = implant_and_patch_cord(fiber), implant_and_patch_cord(generated_fib)
    assert implant["implanted_device"]["name"] == real_implant["implanted_device"]["name"] == "Fiber_0"
    assert set(cord) == set(real_cord) and set(cord["channels"][0]) <= set(real_cord["channels"][0])

    v1_real = [json.loads(p.read_bytes()) for p in sorted((FIXTURE_RECORDS / "v1").glob("*.json"))]
    v1_generated = [a.record for a in large.good if a.layout == "v1_single_file"]
    assert set().union(*map(set, v1_generated)) <= set().union(*map(set, v1_real))
    real_description_keys = set().union(*(set(r["data_description"]) for r in v1_real))
    assert set().union(*(set(r["data_description"]) for r in v1_generated)) <= real_description_keys


# ---- command line and scale ---------------------------------------------------------------------


def test_main_writes_the_corpus_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "corpus"
    assert main(["--assets", "60", "--seed", "5", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.strip().startswith("100%") for line in lines[:-1])
    final = re.fullmatch(r"wrote 60 assets \((\d+) raw, (\d+) derived\), (\d+) sessions to (.+)", lines[-1])
    assert final and int(final[1]) + int(final[2]) == 60 and Path(final[4]) == out
    assets = load_assets(out)
    assert len(assets) == 60
    assert sum(a.data_level == "raw" for a in usable(assets)) <= int(final[1])
    assert pq.read_table(out / "_foraging" / "session_table.parquet").num_rows == int(final[3])

    assert main(["--assets", "60", "--out", str(out), "--quiet"]) == 2  # refuses a non-empty folder
    assert "not empty" in capsys.readouterr().err


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "biodata-cache-sample"
    assert script.exists()
    result = subprocess.run([str(script), "--assets", "30", "--seed", "2", "--out", str(tmp_path / "cli"), "--quiet"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("wrote 30 assets (") and result.stdout.count("\n") == 1
    generate_corpus(tmp_path / "api", 30, seed=2)
    assert file_tree(tmp_path / "cli") == file_tree(tmp_path / "api")


def test_scale_smoke_5000_assets(large: Corpus) -> None:
    summary = large.summary
    assert summary.assets == len(large.assets) == 5000
    assert summary.raw == sum(not DERIVED_NAME.match(a.name) for a in large.assets)
    assert summary.derived == sum(bool(DERIVED_NAME.match(a.name)) for a in large.assets)
    assert 5000 / 30 < summary.subjects < 5000 / 3
    assert large.seconds < 20
