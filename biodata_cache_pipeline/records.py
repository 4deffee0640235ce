"""The record normaliser: metadata records in the 2.x or 1.x layout -> one typed view.

Table code reads only `NormalizedRecord`, so it never branches on the schema version. The
normaliser never raises: a missing key, an explicit null or a wrongly typed value becomes a
missing value, and every wrong type is written down in `problems` so that the tables can count
the record (`skipped_records`) with a reason. A string holding a lone surrogate (the JSON escape
`"\\udcff"` gives one; no UTF-8 column stores it) is a wrong value too, and so is a QC value or tags
nested deeper than `MAX_VALUE_DEPTH` levels (kept as they are, they are written back as JSON, one
recursion per level).

The 1.x field map is the one at the end of tables.md. Where a 2.x field is present it wins; the
1.x field is read only when the 2.x one is absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

_MISSING = object()
_DATE_AT_START = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ]")
# Legacy 0.x `data_level` values and their 2.x names.
_LEGACY_DATA_LEVELS = {"raw data": "raw", "derived data": "derived"}
# The deepest QC value or tags kept, in nested objects and lists; DocDB (MongoDB) stores no
# document nested deeper than 100 levels.
MAX_VALUE_DEPTH = 100


def is_text(value: str) -> bool:
    """Whether a string can be written as UTF-8: it holds no lone surrogate."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(value: Any) -> str | None:
    """Why a JSON value cannot be kept (nested too deep, or a string that is not text), or None."""
    level, depth = [value], 0  # the values (and keys) `depth` objects and lists deep: no recursion
    while level:
        inner = []
        for node in level:
            if isinstance(node, str):
                if not is_text(node):
                    return "holds a string with a lone surrogate"
            elif isinstance(node, (dict, list)):
                if depth == MAX_VALUE_DEPTH:
                    return f"nested deeper than {MAX_VALUE_DEPTH} levels"
                inner.extend(node)
                if isinstance(node, dict):
                    inner.extend(node.values())
        level, depth = inner, depth + 1
    return None


# The parts of a record are named tuples: immutable, and decoded from the record store (once per
# table and run) about three times faster than frozen dataclasses.
class QcMetric(NamedTuple):
    name: str | None
    modality: str | None
    stage: str | None
    value: Any
    status: str | None
    tags: Any  # a dict of tag pairs, a list of tags, or None
    object_type: str | None


class PatchCordConfig(NamedTuple):
    patch_cord: str | None
    channels: tuple[tuple[str | None, str | None], ...]  # (channel_name, intended_measurement)


class DataStream(NamedTuple):
    connections: tuple[tuple[str | None, str | None], ...]  # (source_device, target_device)
    patch_cords: tuple[PatchCordConfig, ...]


# The top-level fields of a raw record that `normalize_record` reads: a source may leave out the
# others (the instrument, about half of an AIND record), which no table reads.
RECORD_SECTIONS = (
    "_id",
    "name",
    "location",
    "_last_modified",
    "last_modified",
    "data_description",
    "subject",
    "acquisition",
    "session",
    "rig",
    "other_identifiers",
    "external_links",
    "processing",
    "procedures",
    "quality_control",
)


@dataclass(slots=True)
class NormalizedRecord:
    """The fields the cache tables read, whatever the layout of the source record."""

    id: str | None = None
    name: str | None = None
    location: str | None = None
    last_modified: str | None = None
    # data_description
    modalities: list[str] = field(default_factory=list)
    project_name: str | None = None
    data_level: str | None = None
    investigators: list[str] = field(default_factory=list)
    institution: str | None = None
    source_data: list[str] = field(default_factory=list)
    # subject
    subject_id: str | None = None
    genotype: str | None = None
    date_of_birth: str | None = None
    acquisition_date_of_birth: str | None = None
    year_of_birth: int | None = None
    # acquisition
    acquisition_start_time: str | None = None
    acquisition_end_time: str | None = None
    acquisition_type: str | None = None
    instrument_id: str | None = None
    experimenters: list[str] = field(default_factory=list)
    data_streams: list[DataStream] = field(default_factory=list)
    # other_identifiers / processing / procedures
    code_ocean: list[str] | None = None
    process_times: list[tuple[str | None, str | None]] = field(default_factory=list)
    pipeline_name: str | None = None
    probe_implants: list[tuple[str | None, str | None]] = field(default_factory=list)  # (fiber, acronym)
    # quality_control
    has_qc: bool = False
    qc_metrics: list[QcMetric] = field(default_factory=list)
    qc_status: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class _Reader:
    """Typed access to dotted paths of one raw record, writing down every wrong type."""

    def __init__(self, raw: dict, problems: list[str]):
        self.raw = raw
        self.problems = problems

    def _wrong(self, path: str, expected: str, value: Any) -> None:
        self.problems.append(f"{path}: expected {expected}, got {type(value).__name__}")

    def get(self, path: str, base: Any = _MISSING) -> Any:
        """The value at `path` (from the record, or from `base`), `None` if absent or null."""
        node = self.raw if base is _MISSING else base
        walked = []
        for key in path.split("."):
            if node is None:
                return None
            if not isinstance(node, dict):
                self._wrong(".".join(walked) or "record", "object", node)
                return None
            node = node.get(key)
            walked.append(key)
        return node

    def first(self, *paths: str) -> Any:
        """The first of `paths` that is present and not null."""
        for path in paths:
            value = self.get(path)
            if value is not None:
                return value
        return None

    def typed(self, path: str, value: Any, kind: type | tuple[type, ...], expected: str) -> Any:
        if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
            if isinstance(value, str) and not value.isascii() and not is_text(value):
                self.problems.append(f"{path}: expected a string without lone surrogates")
                return None
            return value
        if kind is bool and isinstance(value, bool):
            return value
        self._wrong(path, expected, value)
        return None

    def string(self, *paths: str) -> str | None:
        for path in paths:
            value = self.get(path)
            if value is not None:
                return self.typed(path, value, str, "string")
        return None

    def identifier(self, path: str, base: Any = _MISSING) -> str | None:
        """A string id; integers (as some records store subject ids) become their digits."""
        value = self.get(path, base)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.typed(path, value, str, "string")

    def stored(self, path: str, value: Any) -> Any:
        """A JSON value kept as it is (a QC value or tags); None if it cannot be stored."""
        reason = _unstorable(value) if isinstance(value, (str, dict, list)) else None
        if reason is None:
            return value
        self.problems.append(f"{path}: {reason}")
        return None

    def items(self, path: str, value: Any) -> list:
        """A list value; a single string or object stands for a one-element list (0.x layouts)."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, (str, dict)):
            return [value]
        self._wrong(path, "list", value)
        return []

    def objects(self, path: str, base: Any = _MISSING, label: str | None = None) -> list[dict]:
        """A list of objects at `path`; non-object entries are skipped and written down.

        `label` names the place in problems when `path` is relative to a nested `base`.
        """
        label = label or path
        value = self.get(path, base)
        if value is None:
            return []
        if not isinstance(value, list):
            self._wrong(label, "list", value)
            return []
        result = []
        for item in value:
            if isinstance(item, dict):
                result.append(item)
            else:
                self._wrong(f"{label}[]", "object", item)
        return result


def _names_of(reader: _Reader, path: str, value: Any, key: str) -> list[str]:
    """Strings kept as they are, objects give their `key`; anything else is written down."""
    result = []
    for item in reader.items(path, value):
        if isinstance(item, dict):
            item = item.get(key)
        if isinstance(item, str):
            if reader.typed(f"{path}[]", item, str, "string") is not None:
                result.append(item)
        elif item is not None:
            reader._wrong(f"{path}[]", f"string or object with {key}", item)
    return result


def parse_utc(value: str | None) -> datetime | None:
    """An ISO date or time as an aware UTC datetime; a naive time is UTC; None if unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def date_prefix(value: str | None) -> str | None:
    """`2025-01-02T03:04:05` or `2025-01-02 03:04:05` -> `2025-01-02`."""
    match = _DATE_AT_START.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def _is_plain_text(value: Any) -> bool:
    """None, or a string that `_Reader.typed` keeps as it is."""
    return value is None or (type(value) is str and is_text(value))


def _is_storable(value: Any) -> bool:
    """Whether `_Reader.stored` keeps `value` as it is."""
    return not isinstance(value, (str, dict, list)) or _unstorable(value) is None


def _well_formed_metric(m: dict, modality: Any, stage: Any, tags: Any) -> QcMetric | None:
    """The metric, when every field has its expected type (nearly always); None when one has not,
    for the checks of `_qc_metrics` to name the problem. The same values as those checks, for a
    tenth of their cost: AIND records carry about 50 metrics each."""
    history = m.get("status_history")
    if history is None:
        status = None
    elif type(history) is list and all(type(entry) is dict for entry in history):
        status = history[-1].get("status") if history else None
    else:
        return None
    if isinstance(modality, dict):
        modality = modality.get("abbreviation")
    name, value, object_type = m.get("name"), m.get("value"), m.get("object_type")
    if not (
        _is_plain_text(name)
        and _is_plain_text(modality)
        and _is_plain_text(stage)
        and _is_plain_text(status)
        and _is_plain_text(object_type)
        and _is_storable(value)
        and (tags is None or (isinstance(tags, (dict, list)) and _unstorable(tags) is None))
    ):
        return None
    return QcMetric(name, modality, stage, value, status, tags, object_type)


def _qc_metrics(r: _Reader, qc: Any) -> list[QcMetric]:
    metrics: list[QcMetric] = []

    def metric(m: dict, path: str, modality: Any, stage: Any, tags: Any) -> QcMetric:
        well_formed = _well_formed_metric(m, modality, stage, tags)
        if well_formed is not None:
            return well_formed
        history = r.objects("status_history", m, f"{path}.status_history")
        if isinstance(modality, dict):
            modality = modality.get("abbreviation")
        return QcMetric(
            name=r.typed(f"{path}.name", m.get("name"), str, "string"),
            modality=r.typed(f"{path}.modality", modality, str, "string or object with abbreviation"),
            stage=r.typed(f"{path}.stage", stage, str, "string"),
            value=r.stored(f"{path}.value", m.get("value")),
            status=r.typed(f"{path}.status_history[-1].status", history[-1].get("status"), str, "string")
            if history
            else None,
            tags=r.stored(f"{path}.tags", r.typed(f"{path}.tags", tags, (dict, list), "object or list")),
            object_type=r.typed(f"{path}.object_type", m.get("object_type"), str, "string"),
        )

    if qc.get("metrics") is not None or qc.get("evaluations") is None:
        for m in r.objects("metrics", qc, "quality_control.metrics"):
            metrics.append(metric(m, "quality_control.metrics[]", m.get("modality"), m.get("stage"), m.get("tags")))
    else:  # 1.x: evaluations carry modality, stage and tags for their metrics
        for evaluation in r.objects("evaluations", qc, "quality_control.evaluations"):
            for m in r.objects("metrics", evaluation, "quality_control.evaluations[].metrics"):
                metrics.append(
                    metric(
                        m,
                        "quality_control.evaluations[].metrics[]",
                        evaluation.get("modality"),
                        evaluation.get("stage"),
                        evaluation.get("tags"),
                    )
                )
    return metrics


def _data_streams(r: _Reader) -> list[DataStream]:
    streams = []
    for stream in r.objects("acquisition.data_streams"):
        label = "acquisition.data_streams[]"
        connections = tuple(
            (
                r.typed(f"{label}.connections[].source_device", c.get("source_device"), str, "string"),
                r.typed(f"{label}.connections[].target_device", c.get("target_device"), str, "string"),
            )
            for c in r.objects("connections", stream, f"{label}.connections")
        )
        channels_label = f"{label}.configurations[].channels"
        patch_cords = tuple(
            PatchCordConfig(
                patch_cord=r.typed(f"{label}.configurations[].device_name", config.get("device_name"), str, "string"),
                channels=tuple(
                    (
                        r.typed(f"{channels_label}[].channel_name", ch.get("channel_name"), str, "string"),
                        r.typed(
                            f"{channels_label}[].intended_measurement", ch.get("intended_measurement"), str, "string"
                        ),
                    )
                    for ch in r.objects("channels", config, channels_label)
                ),
            )
            for config in r.objects("configurations", stream, f"{label}.configurations")
            if config.get("object_type") == "Patch cord config"
        )
        streams.append(DataStream(connections=connections, patch_cords=patch_cords))
    return streams


def _probe_implants(r: _Reader) -> list[tuple[str | None, str | None]]:
    implants = []
    for subject_procedure in r.objects("procedures.subject_procedures"):
        for procedure in r.objects("procedures", subject_procedure, "procedures.subject_procedures[].procedures"):
            if procedure.get("object_type") != "Probe implant":
                continue
            label = "procedures.subject_procedures[].procedures[]"
            fiber = r.get("implanted_device.name", procedure)
            acronym = r.get("device_config.primary_targeted_structure.acronym", procedure)
            implants.append(
                (
                    r.typed(f"{label}.implanted_device.name", fiber, str, "string"),
                    r.typed(f"{label}.device_config.primary_targeted_structure.acronym", acronym, str, "string"),
                )
            )
    return implants


def normalize_record(raw: Any) -> NormalizedRecord:
    """One raw record (any layout) -> `NormalizedRecord`. Never raises."""
    record = NormalizedRecord()
    if not isinstance(raw, dict):
        record.problems.append(f"record: expected object, got {type(raw).__name__}")
        return record
    r = _Reader(raw, record.problems)

    record.id = r.identifier("_id")
    record.name = r.string("name")
    record.location = r.string("location")
    record.last_modified = r.string("_last_modified", "last_modified")

    modalities = r.first("data_description.modalities", "data_description.modality")
    record.modalities = _names_of(r, "data_description.modalities", modalities, "abbreviation")
    record.project_name = r.string("data_description.project_name")
    data_level = r.string("data_description.data_level")
    record.data_level = _LEGACY_DATA_LEVELS.get(data_level, data_level)
    record.investigators = _names_of(
        r, "data_description.investigators", r.get("data_description.investigators"), "name"
    )
    institution = r.get("data_description.institution")
    record.institution = institution.get("abbreviation") if isinstance(institution, dict) else institution
    record.institution = r.typed("data_description.institution", record.institution, str, "string")
    sources = r.first("data_description.source_data", "data_description.input_data_name")
    record.source_data = _names_of(r, "data_description.source_data", sources, "name")

    record.subject_id = r.identifier("subject.subject_id")
    record.genotype = r.string("subject.subject_details.genotype", "subject.genotype")
    record.date_of_birth = r.string("subject.subject_details.date_of_birth", "subject.date_of_birth")
    record.acquisition_date_of_birth = r.string("acquisition.subject_details.date_of_birth")
    year = r.first("subject.subject_details.year_of_birth", "subject.year_of_birth")
    record.year_of_birth = r.typed("subject.subject_details.year_of_birth", year, int, "integer")

    record.acquisition_start_time = r.string(
        "acquisition.acquisition_start_time", "session.session_start_time", "acquisition.session_start_time"
    )
    record.acquisition_end_time = r.string(
        "acquisition.acquisition_end_time", "session.session_end_time", "acquisition.session_end_time"
    )
    record.acquisition_type = r.string(
        "acquisition.acquisition_type", "session.session_type", "acquisition.session_type"
    )
    record.instrument_id = r.string("acquisition.instrument_id", "session.rig_id", "rig.rig_id")
    experimenters = r.first(
        "acquisition.experimenters", "session.experimenter_full_name", "acquisition.experimenter_full_name"
    )
    record.experimenters = _names_of(r, "acquisition.experimenters", experimenters, "name")
    record.data_streams = _data_streams(r)

    identifiers = r.first("other_identifiers", "external_links")
    identifiers = r.typed("other_identifiers", identifiers, dict, "object")
    code_ocean = identifiers.get("Code Ocean") if identifiers else None
    if isinstance(code_ocean, (list, str)):
        record.code_ocean = _names_of(r, "other_identifiers.Code Ocean", code_ocean, "id")
    elif code_ocean is not None:
        r._wrong("other_identifiers.Code Ocean", "list", code_ocean)

    processes_path = "processing.data_processes"
    if r.get(processes_path) is None:
        processes_path = "processing.processing_pipeline.data_processes"
    record.process_times = [
        (
            r.typed(f"{processes_path}[].start_date_time", p.get("start_date_time"), str, "string"),
            r.typed(f"{processes_path}[].end_date_time", p.get("end_date_time"), str, "string"),
        )
        for p in r.objects(processes_path)
    ]
    pipelines = r.objects("processing.pipelines")
    if pipelines:
        record.pipeline_name = r.typed("processing.pipelines[0].name", pipelines[0].get("name"), str, "string")
    record.probe_implants = _probe_implants(r)

    qc = r.typed("quality_control", r.get("quality_control"), dict, "object")
    if qc:
        record.has_qc = True
        record.qc_metrics = _qc_metrics(r, qc)
        status = r.typed("quality_control.status", qc.get("status"), dict, "object") or {}
        not_text = {k for k in status if isinstance(k, str) and not is_text(k)}
        if not_text:
            record.problems.append("quality_control.status: a key holds a lone surrogate")
        record.qc_status = {
            k: v
            for k, v in status.items()
            if k not in not_text and r.typed(f"quality_control.status.{k}", v, str, "string") is not None
        }
    return record


def is_usable(record: NormalizedRecord) -> bool:
    """Whether the record can make a row at all (it has a name or an `_id`)."""
    return record.name is not None or record.id is not None


class RecordTally:
    """Counts malformed records as they stream past, keeping the first few reasons.

    Wrap the record stream with `track`; report `metadata()` in the asset's materialisation.
    """

    MAX_REASONS = 5
    ATTRIBUTES = ("name", "id", "problems")  # what it reads of a record

    def __init__(self) -> None:
        self.count = 0
        self.reasons: list[str] = []

    def track(self, records):
        for record in records:
            if record.problems:
                self.count += 1
                if len(self.reasons) < self.MAX_REASONS:
                    label = record.name or record.id or "record without name"
                    self.reasons.append(f"{label}: {'; '.join(record.problems[:3])}")
            yield record

    def add(self, records) -> None:
        """Count the malformed records among `records` (`track` without passing them on)."""
        for _ in self.track(records):
            pass

    def metadata(self) -> dict:
        return {"skipped_records": self.count, "skipped_reasons": "\n".join(self.reasons) or "none"}
