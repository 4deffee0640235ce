"""Subject partitions of quality_control: which keys are safe, what changed, what to rebuild.

Pure functions over plain values; the sensor and the CLI gather the inputs and apply the plan.

Change detection: a subject's fingerprint is a hash of the sorted (`_id`, `_last_modified`)
pairs of its records in asset_basics, so a new, modified or removed record changes it. The
quality_control build stores the fingerprint each partition was built from (build state, see
`storage.py`); a subject is stale when the two differ (or it was never built).

One run for many subjects: Dagster runs a partition *range* of the dynamic partition set
(ordered by insertion) in one run, never an arbitrary key list. So the plan makes the stale
subjects the end of the set: keys missing from the set are appended (up-to-date ones first),
and stale keys already in the set are moved behind them when they are not the end already
(delete + re-add: the key and its materialisation history stay, only its position changes).
The stale subjects are then exactly the range `run_range`.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from biodata_cache_client.layout import partition_segment
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.dagster_internals import INVALID_PARTITION_SUBSTRINGS

FINGERPRINT_COLUMNS = ["subject_id", "_id", "_last_modified"]
MAX_KEY_LENGTH = 200
MAX_PATH_SEGMENT_BYTES = 255  # one path segment on common filesystems


def shortened(text: str, length: int = MAX_KEY_LENGTH) -> str:
    """Text from the records (a subject id, a reason) for a log line, the sensor cursor or the
    terminal: as it is, or its first `length` characters and its length (a rejected subject id may
    be a megabyte long)."""
    return text if len(text) <= length else f"{text[:length]}… ({len(text)} characters)"


def partition_key_problem(key: str) -> str | None:
    """Why `key` cannot be a subject partition key, or None when Dagster and the paths carry it safely.

    `/`, `%`, spaces, commas and non-ASCII are fine: storage percent-encodes them in paths.
    """
    if not key.strip():
        return "empty or only whitespace"
    if len(key) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters ({len(key)})"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode (lone surrogate)"
    control = next((c for c in key if unicodedata.category(c) in ("Cc", "Cf")), None)
    if control is not None:
        return f"contains the control or format character U+{ord(control):04X}"
    # Dagster enforces these for static partition keys only; they are as unsafe in dynamic ones.
    dagster_invalid = next((s for s in INVALID_PARTITION_SUBSTRINGS if s in key), None)
    if dagster_invalid is not None:
        return f"contains {dagster_invalid!r}, which Dagster does not allow in partition keys"
    if key in (".", ".."):
        return "'.' and '..' are not valid path segments"
    if len(partition_segment(QUALITY_CONTROL, key)) > MAX_PATH_SEGMENT_BYTES:
        return f"longer than {MAX_PATH_SEGMENT_BYTES} bytes as a percent-encoded path segment"
    return None


def subject_fingerprints(basics: pa.Table) -> dict[str, str]:
    """Subject id -> hash of the sorted (`_id`, `_last_modified`) pairs of its asset_basics rows."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    columns = basics.select(FINGERPRINT_COLUMNS).to_pydict()
    for subject, record_id, modified in zip(*(columns[name] for name in FINGERPRINT_COLUMNS)):
        if subject is not None:
            pairs.setdefault(subject, []).append((record_id or "", modified or ""))
    return {subject: _digest(sorted(records)) for subject, records in pairs.items()}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SubjectPlan:
    """What to do to the subject partitions; see the module docstring."""

    rejected: dict[str, str] = field(default_factory=dict)  # subject id -> reason
    gone: list[str] = field(default_factory=list)  # built, stored or listed, no longer a (valid) subject
    unlist: list[str] = field(default_factory=list)  # keys to delete from the partition set, in order
    append: list[str] = field(default_factory=list)  # keys to add at the end of the set, in order
    stale: list[str] = field(default_factory=list)  # subjects to build: the end of the set afterwards
    new: list[str] = field(default_factory=list)  # stale subjects never built before
    fingerprints: dict[str, str] = field(default_factory=dict)  # of the stale subjects

    @property
    def run_range(self) -> tuple[str, str] | None:
        """First and last partition key of the one run that builds every stale subject."""
        return (self.stale[0], self.stale[-1]) if self.stale else None

    @property
    def digest(self) -> str:
        """Identifies the change set (stale subjects and their fingerprints)."""
        return _digest([[key, self.fingerprints[key]] for key in sorted(self.stale)])

    def summary(self) -> str:
        return (
            f"{len(self.stale)} subjects to build ({len(self.new)} never built), {len(self.gone)} gone, "
            f"{len(self.rejected)} rejected"
        )


def plan_subject_refresh(
    fingerprints: Mapping[str, str],
    built: Mapping[str, str | None],
    partition_keys: Sequence[str],
    stored: Iterable[str] = (),
    full: bool = False,
) -> SubjectPlan:
    """Plan one refresh of the subject partitions.

    `fingerprints`: current subject -> fingerprint (from asset_basics); `built`: partition ->
    fingerprint it was built from; `partition_keys`: the dynamic partition set, in order;
    `stored`: partitions present on storage; `full`: rebuild every subject, changed or not.
    A subject is stale when its built fingerprint differs (or it was never built), whether or
    not it is in the partition set (a new Dagster instance knows no keys yet).
    """
    rejected = {key: problem for key in fingerprints if (problem := partition_key_problem(key)) is not None}
    subjects = {key: value for key, value in fingerprints.items() if key not in rejected}

    def is_stale(key: str) -> bool:
        return full or built.get(key) != subjects[key]

    remaining = [key for key in partition_keys if key in subjects]
    listed = set(remaining)
    stale_listed = [key for key in remaining if is_stale(key)]
    unlisted = sorted(key for key in subjects if key not in listed)
    unlisted_fresh = [key for key in unlisted if not is_stale(key)]
    unlisted_stale = [key for key in unlisted if is_stale(key)]
    # Stale keys stay where they are only if they already end the set and nothing is appended before them.
    in_place = not stale_listed or (not unlisted_fresh and remaining[-len(stale_listed):] == stale_listed)
    moved = [] if in_place else stale_listed
    stale = stale_listed + unlisted_stale
    return SubjectPlan(
        rejected=rejected,
        gone=sorted((set(partition_keys) | set(built) | set(stored)) - set(subjects)),
        unlist=[key for key in partition_keys if key not in subjects] + moved,
        append=unlisted_fresh + moved + unlisted_stale,
        stale=stale,
        new=[key for key in stale if key not in built],
        fingerprints={key: subjects[key] for key in stale},
    )
