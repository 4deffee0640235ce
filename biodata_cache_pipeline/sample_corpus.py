"""Deterministic sample corpus for the embedded default source (`biodata-cache-sample`).

Writes a local folder laid out like the open-data bucket (sources.md): one folder per data asset
holding its metadata record (2.x `metadata.nd.json`, 1.x `metadata.nd.json`, or 1.x core files),
the open-data files the SmartSPIM and behavior tables read, a few deliberately broken records and
non-asset entries, and the foraging session table at `_foraging/session_table.parquet`.

Same `assets` and `seed` give byte-identical files. Assets are generated subject by subject and
written one at a time, so memory stays bounded whatever the corpus size.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OPEN_DATA_BUCKET = "s3://aind-open-data"
FORAGING_TABLE = Path("_foraging") / "session_table.parquet"
RECORD_FILE = "metadata.nd.json"

# Asset positions (0-based, in generation order) that get a broken record: every 100th asset
# from MALFORMED_SLOT has one field of the wrong type, every 1000th from UNREADABLE_SLOT has a
# truncated metadata.nd.json. Both are v2 single-file assets.
MALFORMED_SLOT = 37
UNREADABLE_SLOT = 43

V1_SINGLE_FILE_RATE = 0.08
V1_CORE_FILES_RATE = 0.08
SUBJECT_WITHOUT_QC_RATE = 0.15
FORAGING_ROWS_PER_ROW_GROUP = 8192

MODALITY_NAMES = {
    "behavior": "Behavior",
    "behavior-videos": "Behavior videos",
    "fib": "Fiber photometry",
    "SPIM": "Selective plane illumination microscopy",
    "ecephys": "Extracellular electrophysiology",
    "pophys": "Planar optical physiology",
    "slap2": "Scanned line projection imaging",
}

PEOPLE = (
    ("Jane", "Doe"), ("Rachel", "Lee"), ("Sean", "O'Brien"), ("Avery", "Kim"),
    ("Marcus", "Hale"), ("Priya", "Natarajan"), ("Tomas", "Berg"), ("Lena", "Fischer"),
    ("Omar", "Haddad"), ("Mei", "Chen"), ("Diego", "Alvarez"), ("Hannah", "Wright"),
    ("Kofi", "Mensah"), ("Ines", "Duarte"), ("Yuki", "Sato"), ("Alex", "Morgan"),
    ("Alex", "Rivera"), ("Noor", "Rahman"), ("Felix", "Baum"), ("Grace", "Okafor"),
)

GENOTYPES = (
    "wt/wt",
    "Dbh-Cre-KI/wt",
    "Drd1a-Cre/wt;Oi9(H11-CAG-LSL-Cas9)/wt",
    "Slc17a7-IRES2-FlpO-neo/wt;Ai227(TICF-NLS-EGFP-ICF-tdT-WPRE)-hyg/wt",
    "Dbh-Cre-KI/wt;Ai65(RCFL-tdT)/wt",
    "Sim1-Cre_KJ18/wt;Ai32(RCL-ChR2(H134R)_EYFP)/wt",
    "Slc32a1-IRES-Cre/wt;Oi1(TIT2L-jGCaMP8s-WPRE-ICL-IRES-tTA2)/wt",
    "Syt17-Cre_NO14/wt",
    "RCL-H2B-GFP/RCL-H2B-GFP",
    "Chat-IRES-Cre-neo/wt",
)

TARGETED_STRUCTURES = (
    ("PL", "Prelimbic area"), ("VTA", "Ventral tegmental area"), ("ACB", "Nucleus accumbens"),
    ("CP", "Caudoputamen"), ("LC", "Locus ceruleus"), ("MOs", "Secondary motor area"),
)
ROOT_STRUCTURE = ("root", "root")

SPIM_CHANNELS = ("Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667")

# Data-process names of derived assets, keyed by the process infix of their names.
PROCESS_STEPS = {
    "stitched": ("Image importing", "Image tile alignment", "Image tile fusing"),
    "flatfield-correction": ("Image flat-field correction", "Image destriping"),
    "sorted": ("Ephys preprocessing", "Spike sorting", "Ephys curation"),
    "processed": ("Video motion correction", "dF/F estimation", "Other"),
}

FORAGING_CURRICULA = (
    ("Uncoupled Baiting", "2.3"), ("Uncoupled Without Baiting", "2.3"), ("Coupled Baiting", "1.0"),
)
FORAGING_STAGES = ("STAGE_1_WARMUP", "STAGE_1", "STAGE_2", "STAGE_3", "STAGE_FINAL", "GRADUATED")
VR_CURRICULUM = ("VrForagingCurriculum", "0.4.1")
VR_STAGES = ("Habituation", "OdorLearning", "PatchForaging", "GraduatedForaging")

# QC metric templates per platform: (name, modality, stage, tag key, tag values, value kind).
QcTemplate = tuple[str, str, str, str | None, tuple[str, ...], str]
BEHAVIOR_QC: tuple[QcTemplate, ...] = (
    ("dropped frames", "behavior-videos", "Raw data", "Camera", ("BottomCamera", "SideCamera"), "int"),
    ("researcher name", "behavior", "Raw data", None, (), "person"),
    ("HarpDeviceTestSuite::test_core_version", "behavior", "Processing", "HarpBehavior",
     ("HarpDeviceTestSuite",), "null"),
    ("Reward delivery", "behavior", "Processing", "Water", ("Left", "Right"), "dict"),
    ("untracked local changes", "behavior", "Raw data", None, (), "bool"),
)
VR_QC: tuple[QcTemplate, ...] = (
    ("ContractTestSuite::test_has_errors_on_load", "behavior", "Processing", "Data contract",
     ("ContractTestSuite",), "null"),
    ("HarpDeviceTestSuite::test_fw_version_matches_reader", "behavior", "Processing", "HarpLickometer",
     ("HarpDeviceTestSuite", "HarpLicketySplitTestSuite"), "bool"),
    ("CameraTestSuite::test_dropped_frames", "behavior-videos", "Raw data", "FaceCamera",
     ("CameraTestSuite",), "int"),
    ("VrForagingQcSuite::test_reward_rate", "behavior", "Processing", "VrForaging",
     ("VrForagingQcSuite",), "float"),
)
FIB_QC: tuple[QcTemplate, ...] = (
    ("ContractTestSuite::test_has_errors_on_load", "fib", "Raw data", "Dataset_Contract",
     ("Contract tests", "Dataset tests"), "null"),
    ("CsvTestSuite::test_infer_missing_headers", "fib", "Raw data", "Channel",
     ("green", "red", "iso", "background_green"), "bool"),
    ("Fiber ROI signal", "fib", "Processing", "Fiber ROI",
     ("Fiber ROI 0", "Fiber ROI 1", "Fiber ROI 2", "Fiber ROI 3"), "float"),
)
SPIM_QC: tuple[QcTemplate, ...] = (
    ("Dataset neuroglancer link", "SPIM", "Processing", "Channel", SPIM_CHANNELS, "str"),
    ("Tile alignment error", "SPIM", "Processing", "Channel", SPIM_CHANNELS, "float"),
    ("Raw data integrity", "SPIM", "Raw data", None, (), "bool"),
)
ECEPHYS_QC: tuple[QcTemplate, ...] = (
    ("Drift map", "ecephys", "Raw data", "Probe", ("ProbeA", "ProbeB"), "dict"),
    ("Saturation", "ecephys", "Raw data", "Probe", ("ProbeA", "ProbeB"), "float"),
    ("Unit yield", "ecephys", "Processing", "Probe", ("ProbeA", "ProbeB"), "int"),
)
POPHYS_QC: tuple[QcTemplate, ...] = (
    ("Motion correction", "pophys", "Processing", "Plane", ("VISp_0", "VISp_1", "VISl_0"), "float"),
    ("Z-drift", "pophys", "Processing", "Plane", ("VISp_0", "VISp_1", "VISl_0"), "float"),
    ("Eye tracking", "behavior-videos", "Raw data", "Camera", ("EyeCamera",), "str"),
)
SLAP2_QC: tuple[QcTemplate, ...] = (
    ("DMD calibration", "slap2", "Raw data", "DMD", ("DMD1", "DMD2"), "bool"),
    ("ROI count", "slap2", "Processing", "DMD", ("DMD1", "DMD2"), "int"),
)


@dataclass(frozen=True)
class Platform:
    """How one acquisition platform's subjects, raw assets and derived assets look."""

    key: str
    label: str | None  # raw folder prefix; None -> the bare subject id (v2-era names)
    modalities: tuple[str, ...]
    derived_modalities: tuple[str, ...]
    acquisition_types: tuple[str, ...]
    instrument_ids: tuple[str, ...]
    projects: tuple[str, ...]
    process: str  # derived name infix
    pipelines: tuple[str, ...]
    sessions: tuple[int, int]
    derived_rate: float
    qc_templates: tuple[QcTemplate, ...]
    trainer_state: str | None = None  # "foraging" or "vr"
    in_foraging_table: bool = False
    has_fibers: bool = False
    is_spim: bool = False
    v1_layout_allowed: bool = True


DYNAMIC_FORAGING_TYPES = ("Coupled Baiting", "Uncoupled Baiting", "Coupled Without Baiting",
                          "Uncoupled Without Baiting")

# Listed smallest first: the first subjects cycle through this order so every platform appears
# early even in a tiny corpus; later subjects are drawn by SUBJECT_WEIGHTS.
PLATFORMS = (
    Platform("smartspim", "SmartSPIM", ("SPIM",), ("SPIM",), ("Whole brain imaging",),
             ("440_SmartSPIM1_20240325", "440_SmartSPIM2_20241025", "SmartSPIM3-2"),
             ("MSMA Platform", "Thalamus in the middle"), "stitched", ("aind-smartspim-pipeline",),
             (1, 2), 0.8, SPIM_QC, is_spim=True),
    # exaSPIM stays 2.x: the 1.x mapping has no instrument field for SPIM acquisitions, and the
    # instrument id is what tells exaSPIM apart from SmartSPIM.
    Platform("exaspim", "exaSPIM", ("SPIM",), ("SPIM",), ("Whole brain imaging",),
             ("exaspim-01", "exaSPIM1-01"), ("MSMA Platform",), "flatfield-correction",
             ("aind-exaspim-pipeline",), (1, 2), 0.5, SPIM_QC, is_spim=True, v1_layout_allowed=False),
    Platform("slap2", "SLAP2", ("slap2", "behavior"), ("slap2",), ("SLAP2 imaging",), ("SLAP2_1",),
             ("Ophys Platform - SLAP2",), "processed", ("aind-slap2-pipeline",), (2, 5), 0.4, SLAP2_QC),
    Platform("ecephys", "ecephys", ("ecephys", "behavior-videos"), ("ecephys",),
             ("Dynamic Routing", "Psilocybin NP Ultra"),
             ("325_NP1_Ultra_20240506", "NP3", "323_EPHYS1_20250101"),
             ("NP Ultra and Psychedelics", "Dynamic Routing"), "sorted", ("aind-ephys-pipeline",),
             (2, 5), 0.8, ECEPHYS_QC),
    Platform("pophys", "multiplane-ophys", ("pophys", "behavior-videos"), ("pophys",),
             ("OPHYS_1_images_A", "OPHYS_4_images_B"), ("MESO.1", "429-mesoscope-20220321"),
             ("Visual learning",), "processed", ("aind-ophys-pipeline",), (2, 6), 0.6, POPHYS_QC),
    Platform("fib", None, ("fib", "behavior", "behavior-videos"), ("fib",), ("AindVrForaging",),
             ("13A", "FIP_1", "FIP_2"), ("Neuromodulator dynamics in foraging",), "processed",
             ("Fiberphotometry Schema 2.0 Processing Pipeline",), (3, 10), 0.7, FIB_QC + VR_QC,
             trainer_state="vr", has_fibers=True),
    Platform("fib_foraging", "behavior", ("behavior", "behavior-videos", "fib"), ("fib",),
             DYNAMIC_FORAGING_TYPES, ("447_2D_20250624", "FIP_1"), ("Neuromodulator dynamics in foraging",),
             "processed", ("aind-fip-dff",), (3, 10), 0.7, FIB_QC + BEHAVIOR_QC,
             trainer_state="foraging", in_foraging_table=True, has_fibers=True),
    Platform("vr_foraging", None, ("behavior", "behavior-videos"), ("behavior",), ("AindVrForaging",),
             ("4A", "5B", "13A"), ("Cognitive flexibility in patch foraging",), "processed", ("",),
             (3, 10), 0.5, VR_QC, trainer_state="vr"),
    Platform("dynamic_foraging", "behavior", ("behavior", "behavior-videos"), ("behavior",),
             DYNAMIC_FORAGING_TYPES, ("447_2D_20250624", "446_8A_20250409", "322_4C_20241105"),
             ("Behavior Platform", "Dynamic foraging learning"), "processed",
             ("aind-dynamic-foraging-pipeline",), (4, 14), 0.6, BEHAVIOR_QC,
             trainer_state="foraging", in_foraging_table=True),
)
SUBJECT_WEIGHTS = {
    "smartspim": 30, "exaspim": 5, "slap2": 6, "ecephys": 10, "pophys": 8,
    "fib": 8, "fib_foraging": 7, "vr_foraging": 12, "dynamic_foraging": 28,
}

FORAGING_SCHEMA = pa.schema([
    ("subject_id", pa.string()),
    ("session_date", pa.string()),
    ("nwb_suffix", pa.int64()),
    ("session", pa.int64()),
    ("rig", pa.string()),
    ("trainer", pa.string()),
    ("task", pa.string()),
    ("curriculum_name", pa.string()),
    ("curriculum_version", pa.string()),
    ("current_stage_actual", pa.string()),
    ("foraging_eff", pa.float64()),
    ("foraging_eff_random_seed", pa.float64()),
    ("finished_trials", pa.int64()),
    ("finished_rate", pa.float64()),
    ("total_trials", pa.int64()),
    ("bias_naive", pa.float64()),
    ("water_in_session_total", pa.float64()),
    ("session_run_time_in_min", pa.float64()),
])


@dataclass
class Subject:
    """Per-subject state, kept only while the subject's assets are being generated."""

    subject_id: str
    platform: Platform
    genotype: str | None
    born: date
    birth_date_recorded: bool
    sex: str
    project: str | None
    investigators: list[tuple[str, str]]
    experimenters: list[tuple[str, str]]
    has_qc: bool
    fibers: list[tuple[str, tuple[str, str] | None]]  # (fiber name, (acronym, structure name) or absent)
    spim_channels: list[str]
    curriculum: tuple[str, str] | None
    stages: tuple[str, ...]
    stage_index: int = 0


@dataclass
class GeneratedAsset:
    """One asset folder: its name, files (relative path -> bytes) and what kind it is."""

    name: str
    data_level: str
    layout: str  # "v2", "v1_single_file" or "v1_core_files"
    files: dict[str, bytes]
    files_mtime: float | None = None
    malformed: bool = False
    unreadable: bool = False
    foraging_session: dict | None = None


@dataclass
class CorpusSummary:
    """Counts of what `generate_corpus` wrote."""

    out: Path
    assets: int = 0
    raw: int = 0
    derived: int = 0
    sessions: int = 0
    subjects: int = 0
    v1_single_file: int = 0
    v1_core_files: int = 0
    malformed: int = 0
    unreadable: int = 0


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _folder_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d_%H-%M-%S")


def _utc_millis(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _pacific_offset(moment: datetime) -> str:
    return "-08:00" if moment.month in (11, 12, 1, 2, 3) else "-07:00"


def _modality(abbreviation: str) -> dict:
    return {"name": MODALITY_NAMES[abbreviation], "abbreviation": abbreviation}


class CorpusGenerator:
    """Yields the corpus's assets in a fixed order from one seeded random stream."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"biodata-cache-sample/{seed}")
        self.position = 0
        self.subjects = 0

    def uuid_for(self, kind: str, name: str) -> str:
        return str(uuid.uuid5(self.namespace, f"{kind}/{name}"))

    # ---- subjects and sessions -------------------------------------------------------------

    def assets(self) -> Iterator[GeneratedAsset]:
        """Endless stream of assets; take as many as needed (a prefix is a smaller corpus)."""
        weights = [SUBJECT_WEIGHTS[p.key] for p in PLATFORMS]
        for index in itertools.count():
            if index < len(PLATFORMS):
                platform = PLATFORMS[index]
            else:
                platform = self.rng.choices(PLATFORMS, weights)[0]
            subject = self.new_subject(index, platform)
            self.subjects += 1
            yield from self.subject_assets(subject)

    def new_subject(self, index: int, platform: Platform) -> Subject:
        rng = self.rng
        # Strictly increasing six-digit ids: subjects come out in subject_id order.
        subject_id = str(600000 + index * 3 + rng.randrange(3))
        fibers = []
        if platform.has_fibers:
            for number in range(rng.randint(2, 4)):
                roll = rng.random()
                target = rng.choice(TARGETED_STRUCTURES) if roll < 0.85 else ROOT_STRUCTURE if roll < 0.93 else None
                fibers.append((f"Fiber_{number}", target))
        if platform.trainer_state == "foraging":
            curriculum, stages = rng.choice(FORAGING_CURRICULA), FORAGING_STAGES
        elif platform.trainer_state == "vr":
            curriculum, stages = VR_CURRICULUM, VR_STAGES
        else:
            curriculum, stages = None, ()
        return Subject(
            subject_id=subject_id,
            platform=platform,
            genotype=rng.choice(GENOTYPES) if rng.random() < 0.95 else None,
            born=date(2023, 1, 1) + timedelta(days=rng.randrange(900)),
            birth_date_recorded=rng.random() < 0.92,
            sex=rng.choice(("Male", "Female")),
            project=rng.choice(platform.projects) if rng.random() < 0.97 else None,
            investigators=rng.sample(PEOPLE, rng.randint(1, 3)),
            experimenters=rng.sample(PEOPLE, rng.randint(1, 3)),
            has_qc=rng.random() >= SUBJECT_WITHOUT_QC_RATE,
            fibers=fibers,
            spim_channels=sorted(rng.sample(SPIM_CHANNELS, rng.randint(1, 3))),
            curriculum=curriculum,
            stages=stages,
        )

    def subject_assets(self, subject: Subject) -> Iterator[GeneratedAsset]:
        rng = self.rng
        platform = subject.platform
        session_day = subject.born + timedelta(days=rng.randint(60, 200))
        for session_number in range(1, rng.randint(*platform.sessions) + 1):
            start = datetime.combine(session_day, datetime.min.time()) + timedelta(
                seconds=rng.randrange(8 * 3600, 18 * 3600), microseconds=rng.randrange(1_000_000))
            raw = self.raw_record(subject, start)
            trainer_state = self.trainer_state(subject) if platform.trainer_state else None
            yield self.render(raw, platform, self.raw_open_data_files(subject, raw["name"], trainer_state),
                              self.foraging_session(subject, raw, session_number, trainer_state))
            if subject.curriculum and rng.random() < 0.35:
                subject.stage_index = min(subject.stage_index + 1, len(subject.stages) - 1)
            derived_count = 0
            if rng.random() < platform.derived_rate:
                derived_count = 2 if rng.random() < 0.25 else 1
            processed_at = start
            for _ in range(derived_count):
                processed_at += timedelta(hours=rng.randint(6, 24 * 60), seconds=rng.randrange(3600))
                derived = self.derived_record(subject, raw, processed_at)
                yield self.render(derived, platform, self.derived_open_data_files(subject, derived["name"]))
            session_day += timedelta(days=rng.randint(1, 3) if platform.trainer_state else rng.randint(7, 60))

    # ---- people --------------------------------------------------------------------------

    def messy_name(self, person: tuple[str, str], allow_object: bool) -> str | dict:
        first, last = person
        roll = self.rng.random()
        if roll < 0.45:
            return f"{first} {last}"
        if roll < 0.65:
            return f"{first}.{last}".lower()
        if roll < 0.70:
            return f"{first}  {last}".upper()
        if roll < 0.75:
            return f"{first}{last}"
        if roll < 0.80:
            return f" {first} {last}"
        if roll < 0.85:
            return f"{first}.{last}@alleninstitute.org".lower().replace("'", "")
        if roll < 0.92 and allow_object:
            return {"name": f"{first} {last}"}
        return f"{first} {last}"

    def people_list(self, people: list[tuple[str, str]], allow_object: bool) -> list:
        """Render people the way records hold them, with first-name-only, joined and empty entries."""
        rng = self.rng
        entries = [self.messy_name(person, allow_object) for person in people]
        roll = rng.random()
        if roll < 0.06:
            entries.insert(0, people[0][0])
        elif roll < 0.11 and len(people) >= 2:
            entries[:2] = [f"{people[0][0]} {people[0][1]}, {people[1][0]} {people[1][1]}"]
        elif roll < 0.14:
            entries.append("")
        return entries

    # ---- 2.x records ---------------------------------------------------------------------

    def acquisition_time(self, moment: datetime) -> str:
        roll = self.rng.random()
        if roll < 0.45:
            return moment.isoformat(timespec="microseconds") + "Z"
        if roll < 0.8:
            return moment.isoformat(timespec="microseconds") + _pacific_offset(moment)
        return moment.isoformat(timespec="seconds")

    def process_time(self, moment: datetime) -> str:
        separator = " " if self.rng.random() < 0.15 else "T"
        suffix = "+00:00" if separator == " " else "Z"
        return moment.isoformat(sep=separator, timespec="microseconds") + suffix

    def raw_record(self, subject: Subject, start: datetime) -> dict:
        rng = self.rng
        platform = subject.platform
        prefix = f"{platform.label}_" if platform.label else ""
        name = f"{prefix}{subject.subject_id}_{_folder_time(start)}"
        end = start + timedelta(minutes=rng.randint(30, 180) if not platform.is_spim else rng.randint(600, 4000),
                                seconds=rng.randrange(60), microseconds=rng.randrange(1_000_000))
        instrument_id = rng.choice(platform.instrument_ids)
        start_time, end_time = self.acquisition_time(start), self.acquisition_time(end)
        uploaded = end + timedelta(hours=rng.randint(1, 30), seconds=rng.randrange(3600))
        modalities = [_modality(m) for m in platform.modalities]
        experimenters = rng.sample(subject.experimenters, rng.randint(1, len(subject.experimenters)))
        upload_process = {
            "object_type": "Data process", "name": "Compression", "process_type": "Compression",
            "stage": "Processing", "start_date_time": self.process_time(uploaded),
            "end_date_time": self.process_time(uploaded + timedelta(minutes=rng.randint(1, 90))),
            "experimenters": ["AIND Scientific Computing"], "code": {"url": "", "version": ""},
        }
        return {
            **self.record_header(name),
            "subject": self.subject_section(subject),
            "data_description": self.data_description(subject, name, "raw", platform.modalities, None, start),
            "procedures": self.procedures_section(subject),
            "instrument": {"object_type": "Instrument", "instrument_id": instrument_id, "modalities": modalities,
                           "modification_date": start.date().isoformat()},
            "processing": {"object_type": "Processing", "data_processes": [upload_process],
                           "pipelines": [{"object_type": "Code", "name": "transform_and_upload_v2",
                                          "version": "0.37.0"}]},
            "acquisition": {
                "object_type": "Acquisition",
                "schema_version": "2.2.3",
                "subject_id": subject.subject_id,
                "acquisition_start_time": start_time,
                "acquisition_end_time": end_time,
                "acquisition_type": rng.choice(platform.acquisition_types),
                "experimenters": self.people_list(experimenters, allow_object=True),
                "instrument_id": instrument_id,
                "data_streams": self.data_streams(subject, start_time, end_time),
                "subject_details": {"object_type": "Acquisition subject details",
                                    "mouse_platform_name": "wheel" if platform.trainer_state else None},
            },
            "quality_control": self.quality_control(subject, end, derived=False),
            "model": None,
            **self.record_times(uploaded),
        }

    def record_header(self, name: str) -> dict:
        """The identity fields every 2.x record starts with, in document order."""
        return {
            "_id": self.uuid_for("record", name),
            "object_type": "Metadata",
            "schema_version": "2.2.2",
            "name": name,
            "location": f"{OPEN_DATA_BUCKET}/{name}",
            **self.other_identifiers(name),
        }

    def derived_record(self, subject: Subject, raw: dict, processed_at: datetime) -> dict:
        rng = self.rng
        platform = subject.platform
        name = f"{raw['name']}_{platform.process}_{_folder_time(processed_at)}"
        steps = []
        step_start = processed_at - timedelta(hours=rng.randint(1, 8))
        step_names = PROCESS_STEPS[platform.process]
        for step_name in step_names[: rng.randint(1, len(step_names))]:
            step_end = step_start + timedelta(minutes=rng.randint(2, 90), microseconds=rng.randrange(1_000_000))
            steps.append({
                "object_type": "Data process", "name": step_name, "process_type": step_name, "stage": "Processing",
                "start_date_time": self.process_time(step_start), "end_date_time": self.process_time(step_end),
                "experimenters": ["AIND Scientific Computing"], "pipeline_name": None,
            })
            step_start = step_end
        return {
            **self.record_header(name),
            "subject": raw["subject"],
            "data_description": self.data_description(subject, name, "derived", platform.derived_modalities,
                                                      raw["name"], processed_at),
            "procedures": raw["procedures"],
            "instrument": raw["instrument"],
            "processing": {"object_type": "Processing", "data_processes": steps,
                           "pipelines": [{"object_type": "Code", "name": rng.choice(platform.pipelines),
                                          "version": f"{rng.randint(0, 4)}.{rng.randint(0, 20)}.0"}]},
            "acquisition": raw["acquisition"],
            "quality_control": self.quality_control(subject, processed_at, derived=True),
            "model": None,
            **self.record_times(processed_at + timedelta(minutes=rng.randint(1, 30))),
        }

    def other_identifiers(self, name: str) -> dict:
        if self.rng.random() < 0.1:
            return {}
        return {"other_identifiers": {"Code Ocean": [self.uuid_for("code-ocean", name)]}}

    def record_times(self, created: datetime) -> dict:
        modified = created
        if self.rng.random() < 0.2:
            modified += timedelta(days=self.rng.randint(1, 300), seconds=self.rng.randrange(86400))
        return {"_created": _utc_millis(created), "_last_modified": _utc_millis(modified)}

    def subject_section(self, subject: Subject) -> dict:
        details = {"object_type": "Mouse subject", "sex": subject.sex, "genotype": subject.genotype,
                   "species": {"name": "Mus musculus", "common_name": "House mouse"}}
        if subject.birth_date_recorded:
            details["date_of_birth"] = subject.born.isoformat()
        return {"object_type": "Subject", "schema_version": "2.0.13", "subject_id": subject.subject_id,
                "subject_details": details}

    def data_description(self, subject: Subject, name: str, level: str, modalities: tuple[str, ...],
                         source: str | None, created: datetime) -> dict:
        investigators = []
        for entry in self.people_list(subject.investigators, allow_object=False):
            plain_string = self.rng.random() < 0.05
            investigators.append(entry if plain_string else {"object_type": "Person", "name": entry})
        return {
            "object_type": "Data description",
            "schema_version": "2.3.0",
            "name": name,
            "subject_id": subject.subject_id,
            "creation_time": _utc_millis(created),
            "data_level": level,
            "modalities": [_modality(m) for m in modalities],
            "project_name": subject.project,
            "investigators": investigators,
            "institution": {"abbreviation": "AIND", "name": "Allen Institute for Neural Dynamics"},
            "funding_source": [],
            "source_data": [source] if source else None,
            "license": "CC-BY-4.0",
        }

    def procedures_section(self, subject: Subject) -> dict:
        procedures: list[dict] = [{"object_type": "Headframe", "headframe_type": "L-shaped"}]
        for fiber_name, target in subject.fibers:
            config: dict = {"object_type": "Probe config", "device_name": fiber_name}
            if target is not None:
                config["primary_targeted_structure"] = {"acronym": target[0], "name": target[1], "atlas": "CCFv3"}
            procedures.append({
                "object_type": "Probe implant",
                "implanted_device": {"object_type": "Fiber probe", "name": fiber_name, "core_diameter": 200,
                                     "numerical_aperture": 0.37},
                "device_config": config,
            })
        return {"object_type": "Procedures", "subject_id": subject.subject_id,
                "subject_procedures": [{"object_type": "Surgery", "experimenters": ["NSB-1007"],
                                        "procedures": procedures}],
                "specimen_procedures": []}

    def data_streams(self, subject: Subject, start_time: str, end_time: str) -> list[dict]:
        rng = self.rng
        platform = subject.platform
        times = {"stream_start_time": start_time, "stream_end_time": end_time}
        other = [m for m in platform.modalities if m != "fib"]
        streams = [{"object_type": "Data stream", "modalities": [_modality(m) for m in other],
                    "configurations": [], "connections": [], **times}] if other else []
        if not subject.fibers:
            return streams
        connections, configurations = [], []
        for number, (fiber_name, _target) in enumerate(subject.fibers):
            patch_cord = f"Patch Cord {number}"
            target = fiber_name if rng.random() < 0.1 else fiber_name.replace("_", " ")
            connections.append({"object_type": "Connection", "source_device": patch_cord, "target_device": target})
            red_measurement = rng.choice((None, "None", "acetylcholine"))
            channels = [
                {"object_type": "Channel", "channel_name": f"{fiber_name}_Green",
                 "intended_measurement": rng.choice(("calcium", "dopamine")), "emission_wavelength": 520},
                {"object_type": "Channel", "channel_name": f"{fiber_name}_Isosbestic",
                 "intended_measurement": "control", "emission_wavelength": 520},
                {"object_type": "Channel", "channel_name": f"{fiber_name}_Red",
                 "intended_measurement": red_measurement, "emission_wavelength": 590},
            ]
            configurations.append({"object_type": "Patch cord config", "device_name": patch_cord,
                                   "channels": channels})
        configurations.append({"object_type": "Detector config", "device_name": "Green CMOS",
                               "exposure_time": 15.65})
        streams.append({"object_type": "Data stream", "modalities": [_modality("fib")],
                        "configurations": configurations, "connections": connections, **times})
        return streams

    # ---- quality control -----------------------------------------------------------------

    def quality_control(self, subject: Subject, evaluated_at: datetime, derived: bool) -> dict | None:
        rng = self.rng
        if not subject.has_qc or rng.random() >= (0.85 if derived else 0.3):
            return None
        templates = subject.platform.qc_templates
        candidates = [(template, tag_value) for template in templates for tag_value in (template[4] or (None,))]
        chosen = sorted(rng.sample(range(len(candidates)), min(len(candidates), rng.randint(3, 10))))
        metrics = [self.metric(subject, *candidates[i], evaluated_at) for i in chosen]
        if subject.platform.key == "ecephys" and derived and rng.random() < 0.5:
            metrics.append({
                "object_type": "Curation metric", "name": "Manual unit curation",
                "modality": _modality("ecephys"), "stage": "Processing",
                "value": {"curations": [{"unit": rng.randrange(400), "label": "noise"}]},
                "status_history": [{"object_type": "QC status", "evaluator": "Automated", "status": "Pass",
                                    "timestamp": _utc_millis(evaluated_at)}],
                "tags": {"Probe": "ProbeA"}, "description": None, "reference": None,
            })
        return {"object_type": "Quality control", "schema_version": "2.0.8", "metrics": metrics,
                "key_experimenters": [], "notes": None, "default_grouping": ["modality", "stage"],
                "allow_tag_failures": [], "status": self.status_map(metrics)}

    def metric(self, subject: Subject, template: QcTemplate, tag_value: str | None, evaluated_at: datetime) -> dict:
        rng = self.rng
        name, modality, stage, tag_key, _values, value_kind = template
        if tag_key is None:
            tags = None
        else:
            roll = rng.random()
            tags = {tag_key: tag_value} if roll < 0.85 else [tag_key, tag_value] if roll < 0.93 else None
        history = []
        moment = evaluated_at
        for _ in range(0 if rng.random() < 0.03 else rng.randint(1, 3)):
            moment += timedelta(minutes=rng.randint(1, 5000))
            evaluator = " ".join(rng.choice(subject.experimenters)) if history else "Automated"
            status = rng.choices(("Pass", "Fail", "Pending"), (70, 15, 15))[0]
            history.append({"object_type": "QC status", "evaluator": evaluator, "status": status,
                            "timestamp": _utc_millis(moment)})
        return {
            "object_type": "QC metric",
            "name": name,
            "modality": modality if rng.random() < 0.05 else _modality(modality),
            "stage": stage,
            "value": self.metric_value(value_kind, subject),
            "status_history": history,
            "tags": tags,
            "description": f"Test: {name}",
            "reference": None,
        }

    def metric_value(self, kind: str, subject: Subject) -> object:
        rng = self.rng
        if kind == "int":
            return rng.randint(0, 500)
        if kind == "float":
            return round(rng.uniform(0, 10), 4)
        if kind == "bool":
            return rng.random() < 0.8
        if kind == "dict":
            return {"value": round(rng.uniform(0, 1), 3), "unit": "a.u."}
        if kind == "str":
            return rng.choice(("", "ok", "https://neuroglancer-demo.appspot.com/#!s3://aind-open-data"))
        if kind == "person":
            return " ".join(rng.choice(subject.experimenters))
        return None

    @staticmethod
    def status_map(metrics: list[dict]) -> dict[str, str]:
        """Worst status per tag key (`k:v`), modality and stage, as the schema computes it."""
        severity = {"Pass": 0, "Pending": 1, "Fail": 2}
        status: dict[str, str] = {}
        for metric in metrics:
            latest = metric["status_history"][-1]["status"] if metric["status_history"] else "Pending"
            modality = metric["modality"]
            keys = [f"{k}:{v}" for k, v in metric["tags"].items()] if isinstance(metric["tags"], dict) else []
            keys += [modality["abbreviation"] if isinstance(modality, dict) else modality, metric["stage"]]
            for key in keys:
                if severity[latest] >= severity[status.get(key, "Pass")]:
                    status[key] = latest
        return status

    # ---- open-data files and the foraging table --------------------------------------------

    def trainer_state(self, subject: Subject) -> dict:
        stage = subject.stages[subject.stage_index]
        if self.rng.random() < 0.02:
            stage = "STAGE_UNLISTED"
        name, version = subject.curriculum
        return {"curriculum": {"name": name, "version": version,
                               "graph": {"nodes": {str(i): {"name": s} for i, s in enumerate(subject.stages)}}},
                "stage": {"name": stage}}

    def raw_open_data_files(self, subject: Subject, name: str, trainer_state: dict | None) -> dict[str, bytes]:
        rng = self.rng
        roll = rng.random()
        files: dict[str, bytes] = {}
        if subject.platform.key == "smartspim":
            config = _dumps({"ng_link": f"https://neuroglancer-demo.appspot.com/#!{OPEN_DATA_BUCKET}/{name}"
                                        "/SPIM/derivatives/neuroglancer_config.json"})
            if roll < 0.7:
                files["SPIM/derivatives/neuroglancer_config.json"] = config
            elif roll < 0.8:
                files["derivatives/neuroglancer_config.json"] = config
            elif roll < 0.85:
                files["SPIM/derivatives/neuroglancer_config.json"] = config[: len(config) // 2]
        elif trainer_state is not None:
            state = _dumps(trainer_state)
            if subject.platform.trainer_state == "vr":
                if roll < 0.6:
                    files[f"behavior/Logs/.launcher/TrainerState_{rng.randrange(10**6)}.json"] = state
            elif roll < 0.55:
                files["behavior/trainer_state.json"] = state
            elif roll < 0.7:
                for number in range(rng.randint(1, 2)):
                    files[f"behavior/trainer_state_{number}.json"] = state
            elif roll < 0.8:
                files[f"behavior/Logs/.launcher/TrainerState_{rng.randrange(10**6)}.json"] = state
        return files

    def derived_open_data_files(self, subject: Subject, name: str) -> dict[str, bytes]:
        if subject.platform.key != "smartspim" or self.rng.random() < 0.15:
            return {}
        files = {}
        for channel in subject.spim_channels:
            path = f"image_cell_segmentation/{channel}/visualization/neuroglancer_config.json"
            files[path] = _dumps({"ng_link": f"https://neuroglancer-demo.appspot.com/#!{OPEN_DATA_BUCKET}/{name}/{path}",
                                  "layers": [{"name": channel, "type": "segmentation"}]})
        return files

    def foraging_session(self, subject: Subject, raw: dict, session_number: int,
                         trainer_state: dict | None) -> dict | None:
        if not subject.platform.in_foraging_table:
            return None
        rng = self.rng
        acquisition = raw["acquisition"]
        start = datetime.strptime(raw["name"][-19:], "%Y-%m-%d_%H-%M-%S")
        finished_rate = round(rng.uniform(0.55, 1.0), 4)
        total_trials = rng.randint(150, 700)
        efficiency = round(rng.uniform(0.45, 0.95), 4)
        known_curriculum = trainer_state is not None and rng.random() < 0.9
        return {
            "subject_id": subject.subject_id,
            "session_date": start.date().isoformat(),
            "nwb_suffix": int(start.strftime("%H%M%S")),
            "session": session_number,
            "rig": acquisition["instrument_id"],
            "trainer": self.messy_name(rng.choice(subject.experimenters), allow_object=False),
            "task": acquisition["acquisition_type"],
            "curriculum_name": trainer_state["curriculum"]["name"] if known_curriculum else None,
            "curriculum_version": trainer_state["curriculum"]["version"] if known_curriculum else None,
            "current_stage_actual": trainer_state["stage"]["name"] if known_curriculum else None,
            "foraging_eff": efficiency,
            "foraging_eff_random_seed": round(efficiency + rng.uniform(-0.05, 0.05), 4)
            if rng.random() < 0.95 else None,
            "finished_trials": round(total_trials * finished_rate),
            "finished_rate": finished_rate,
            "total_trials": total_trials,
            "bias_naive": round(rng.uniform(-0.6, 0.6), 4),
            "water_in_session_total": round(rng.uniform(0.4, 1.6), 3),
            "session_run_time_in_min": round(rng.uniform(30, 95), 2),
        }

    # ---- layouts -------------------------------------------------------------------------

    def render(self, record: dict, platform: Platform, open_data: dict[str, bytes],
               foraging_session: dict | None = None) -> GeneratedAsset:
        """Serialise a 2.x record into the asset's layout; assign broken records by position."""
        position = self.position
        self.position += 1
        name = record["name"]
        level = record["data_description"]["data_level"]
        if position % 1000 == UNREADABLE_SLOT:
            encoded = _dumps(record)
            return GeneratedAsset(name, level, "v2", {RECORD_FILE: encoded[: len(encoded) // 2], **open_data},
                                  unreadable=True, foraging_session=foraging_session)
        if position % 100 == MALFORMED_SLOT:
            return GeneratedAsset(name, level, "v2", {RECORD_FILE: _dumps(self.malformed(record)), **open_data},
                                  malformed=True, foraging_session=foraging_session)
        roll = self.rng.random() if platform.v1_layout_allowed else 1.0
        if roll < V1_SINGLE_FILE_RATE:
            sections = v1_sections(record, platform)
            single_file = {
                "_id": record["_id"], "name": name, "location": record["location"],
                "created": record["_created"].rstrip("Z"), "last_modified": record["_last_modified"],
                "external_links": record.get("other_identifiers"), "schema_version": "1.1.1",
                "metadata_status": "Valid", **sections,
            }
            return GeneratedAsset(name, level, "v1_single_file", {RECORD_FILE: _dumps(single_file), **open_data},
                                  foraging_session=foraging_session)
        if roll < V1_SINGLE_FILE_RATE + V1_CORE_FILES_RATE:
            core_files = {f"{section}.json": _dumps(content)
                          for section, content in v1_sections(record, platform).items() if content is not None}
            modified = datetime.strptime(record["_last_modified"], "%Y-%m-%dT%H:%M:%S.%fZ")
            return GeneratedAsset(name, level, "v1_core_files", {**core_files, **open_data},
                                  files_mtime=(modified - datetime(1970, 1, 1)).total_seconds(),
                                  foraging_session=foraging_session)
        return GeneratedAsset(name, level, "v2", {RECORD_FILE: _dumps(record), **open_data},
                              foraging_session=foraging_session)

    def malformed(self, record: dict) -> dict:
        """A copy of the record with one field of the wrong type."""
        broken = dict(record)
        kind = self.rng.randrange(6)
        if kind == 0:
            broken["subject"] = record["subject"]["subject_id"]
        elif kind == 1:
            modalities = record["data_description"]["modalities"]
            broken["data_description"] = {**record["data_description"], "modalities": modalities[0]}
        elif kind == 2:
            broken["acquisition"] = {**record["acquisition"], "acquisition_start_time": 1712345678.5}
        elif kind == 3:
            broken["quality_control"] = {**(record["quality_control"] or {}), "metrics": None}
        elif kind == 4:
            broken["processing"] = {**record["processing"], "data_processes": "see notes"}
        else:
            broken["data_description"] = {**record["data_description"], "investigators": "Jane Doe"}
        return broken


def v1_sections(record: dict, platform: Platform) -> dict[str, dict | None]:
    """The 1.x core sections (what the v1 files hold) for a 2.x record."""
    subject = record["subject"]
    details = subject["subject_details"]
    description = record["data_description"]
    acquisition = record["acquisition"]
    source_data = description["source_data"]
    experimenters = [e["name"] if isinstance(e, dict) else e for e in acquisition["experimenters"]]
    session_like = {
        "schema_version": "1.0.0",
        "subject_id": subject["subject_id"],
        "experimenter_full_name": experimenters,
        "session_start_time": acquisition["acquisition_start_time"],
        "session_end_time": acquisition["acquisition_end_time"],
    }
    if platform.is_spim:
        session_like["instrument_id"] = acquisition["instrument_id"]
    else:
        session_like |= {"session_type": acquisition["acquisition_type"], "rig_id": acquisition["instrument_id"],
                         "data_streams": [v1_stream(stream) for stream in acquisition["data_streams"]]}
    processes = record["processing"]["data_processes"]
    quality_control = record["quality_control"]
    return {
        "subject": {"schema_version": "1.0.2", "subject_id": subject["subject_id"],
                    "genotype": details.get("genotype"), "date_of_birth": details.get("date_of_birth"),
                    "sex": details["sex"], "species": {"name": "Mus musculus"}},
        "data_description": {
            "schema_version": "1.0.4",
            "name": record["name"],
            "subject_id": subject["subject_id"],
            "creation_time": description["creation_time"],
            "data_level": description["data_level"],
            "modality": description["modalities"],
            "project_name": description["project_name"],
            "investigators": [{"name": i["name"], "abbreviation": None} if isinstance(i, dict) else i
                              for i in description["investigators"]],
            "institution": description["institution"],
            "platform": {"name": f"{platform.label or platform.key} platform",
                         "abbreviation": platform.label or platform.key},
            "input_data_name": source_data[0] if source_data else None,
        },
        "procedures": v1_procedures(record["procedures"]),
        "rig": None if platform.is_spim else {"schema_version": "1.0.0", "rig_id": acquisition["instrument_id"]},
        "acquisition" if platform.is_spim else "session": session_like,
        "processing": {"schema_version": "1.1.3", "processing_pipeline": {
            "data_processes": [{"name": p["name"], "software_version": "0.1.0",
                                "start_date_time": p["start_date_time"], "end_date_time": p["end_date_time"]}
                               for p in processes],
            "processor_full_name": "AIND Scientific Computing",
            "pipeline_url": None,
        }},
        "quality_control": v1_quality_control(quality_control) if quality_control else None,
    }


def v1_stream(stream: dict) -> dict:
    v1 = {"stream_start_time": stream["stream_start_time"], "stream_end_time": stream["stream_end_time"],
          "stream_modalities": stream["modalities"]}
    fibers = {c["source_device"]: c["target_device"] for c in stream["connections"]}
    if fibers:
        v1["fiber_connections"] = [{"patch_cord_name": cord, "fiber_name": fiber.replace(" ", "_")}
                                   for cord, fiber in fibers.items()]
    return v1


def v1_procedures(procedures: dict) -> dict:
    v1_list = []
    for procedure in procedures["subject_procedures"][0]["procedures"]:
        if procedure["object_type"] == "Probe implant":
            target = procedure["device_config"].get("primary_targeted_structure")
            v1_list.append({"procedure_type": "Fiber implant", "probes": [{
                "ophys_probe": {"name": procedure["implanted_device"]["name"], "device_type": "Fiber optic probe"},
                "targeted_structure": target,
            }]})
        else:
            v1_list.append({"procedure_type": "Headframe", "headframe_type": procedure["headframe_type"]})
    return {"schema_version": "1.1.1", "subject_id": procedures["subject_id"],
            "subject_procedures": [{"procedure_type": "Surgery", "experimenter_full_name": "NSB-1007",
                                    "procedures": v1_list}],
            "specimen_procedures": []}


def v1_quality_control(quality_control: dict) -> dict:
    """Group 2.x metrics into 1.x evaluations (modality and stage live on the evaluation)."""
    evaluations: dict[tuple[str, str], dict] = {}
    for metric in quality_control["metrics"]:
        if metric["object_type"] != "QC metric":
            continue
        modality = metric["modality"]
        key = (json.dumps(modality), metric["stage"])
        evaluation = evaluations.setdefault(key, {
            "modality": modality, "stage": metric["stage"], "name": f"{metric['stage']} checks",
            "description": None, "tags": None, "notes": None, "allow_failed_metrics": False, "metrics": [],
        })
        evaluation["metrics"].append({
            "name": metric["name"], "value": metric["value"], "description": metric["description"],
            "reference": None, "evaluated_assets": None,
            "status_history": [{k: v for k, v in entry.items() if k != "object_type"}
                               for entry in metric["status_history"]],
        })
    return {"schema_version": "1.2.1", "evaluations": list(evaluations.values()), "notes": None}


# ---- writing --------------------------------------------------------------------------------

README_TEXT = """Sample corpus for biodata-cache (generated by biodata-cache-sample, seed {seed}, {assets} assets).
Asset folders are named <label>_<YYYY-MM-DD_HH-MM-SS> (derived: ..._<process>_<YYYY-MM-DD_HH-MM-SS>).
This file, scratch/ and _foraging/ are not assets.
"""


class ForagingTableWriter:
    """Appends session rows to the foraging parquet in fixed-size row groups."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, FORAGING_SCHEMA, compression="zstd")
        self.rows: list[dict] = []
        self.count = 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= FORAGING_ROWS_PER_ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=FORAGING_SCHEMA))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def generate_corpus(out: str | Path, assets: int, seed: int,
                    progress: Callable[[int, int], None] | None = None) -> CorpusSummary:
    """Write a corpus of `assets` asset folders into the empty (or new) folder `out`.

    `progress(done, total)` is called about every 10% and at the end.
    """
    if assets < 0:
        raise ValueError("assets must be >= 0")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; remove it or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.txt").write_text(README_TEXT.format(seed=seed, assets=assets))
    (out / "scratch").mkdir()
    (out / "scratch" / RECORD_FILE).write_bytes(_dumps({"note": "scratch space, not a data asset"}))

    summary = CorpusSummary(out=out)
    generator = CorpusGenerator(seed)
    foraging = ForagingTableWriter(out / FORAGING_TABLE)
    progress_step = max(1, assets // 10)
    try:
        for asset in itertools.islice(generator.assets(), assets):
            write_asset(out, asset)
            if asset.foraging_session is not None:
                foraging.add(asset.foraging_session)
            summary.assets += 1
            summary.raw += asset.data_level == "raw"
            summary.derived += asset.data_level == "derived"
            summary.v1_single_file += asset.layout == "v1_single_file"
            summary.v1_core_files += asset.layout == "v1_core_files"
            summary.malformed += asset.malformed
            summary.unreadable += asset.unreadable
            if progress and (summary.assets % progress_step == 0 or summary.assets == assets):
                progress(summary.assets, assets)
    finally:
        foraging.close()
    summary.sessions = foraging.count
    summary.subjects = generator.subjects
    return summary


def write_asset(out: Path, asset: GeneratedAsset) -> None:
    folder = out / asset.name
    for relative, content in asset.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if asset.files_mtime is not None:
            os.utime(path, (asset.files_mtime, asset.files_mtime))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="biodata-cache-sample", description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=300, help="number of asset folders (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must be empty or new)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the final summary")
    args = parser.parse_args(argv)
    if args.assets < 0:
        parser.error("--assets must be >= 0")

    def report(done: int, total: int) -> None:
        print(f"{done * 100 // total:3d}% {done}/{total} assets", flush=True)

    try:
        summary = generate_corpus(args.out, args.assets, args.seed, None if args.quiet else report)
    except FileExistsError as error:
        print(f"biodata-cache-sample: {error}", file=sys.stderr)
        return 2
    print(f"wrote {summary.assets} assets ({summary.raw} raw, {summary.derived} derived), "
          f"{summary.sessions} sessions to {summary.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
