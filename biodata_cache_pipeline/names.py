"""Shared name rules (tables.md, "Name normalisation"): people and instrument ids."""

from __future__ import annotations

import re
from collections.abc import Iterable

_NOT_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9 ]")
_INSTRUMENT_ID = re.compile(r"^[^_-]+[_-](.+)_(\d{8}|\d{4}-\d{2}-\d{2}|2[3-6]\d{4})$")


def normalize_name(name: str) -> str:
    """`jane.doe` -> `Jane Doe`, `o'brien` -> `O Brien`, `a_b-c` -> `A B C`."""
    return " ".join(_NOT_NAME_CHARACTER.sub(" ", name).split()).title()


def merge_key(name: str) -> str:
    """One key per person: `Jane Doe`, `jane.doe` and `JaneDoe` all give `janedoe`."""
    return name.lower().replace(" ", "")


def parse_people(values: Iterable) -> list[str]:
    """Strings (possibly `"A, B"`) or objects with `name` -> normalised names, deduplicated."""
    names: list[str] = []
    seen: set[str] = set()
    for value in values:
        if isinstance(value, dict):
            value = value.get("name")
        if not isinstance(value, str):
            continue
        for part in value.split(","):
            name = normalize_name(part)
            key = merge_key(name)
            if name and key not in seen:
                seen.add(key)
                names.append(name)
    return names


def _first_token(name: str) -> str:
    return name.split(" ", 1)[0].lower()


def _unique_full_name_by_first_token(names: Iterable[str]) -> dict[str, str]:
    """First token -> the multi-token name starting with it, where exactly one such name exists."""
    candidates: dict[str, set[str]] = {}
    for name in names:
        if " " in name:
            candidates.setdefault(_first_token(name), set()).add(name)
    return {token: next(iter(full)) for token, full in candidates.items() if len(full) == 1}


def resolve_first_names(names: list[str]) -> list[str]:
    """Drop a first-name-only entry when exactly one full name in the list starts with it.

    `[Jane, Jane Doe, Bob]` -> `[Jane Doe, Bob]`; ambiguous matches keep everything.
    """
    full_names = _unique_full_name_by_first_token(names)
    return [n for n in names if " " in n or n.lower() not in full_names]


def first_name_map(all_names: Iterable[str]) -> dict[str, str]:
    """Table-wide map: single-token name -> the one multi-token name with that first token."""
    names = set(all_names)
    full_names = _unique_full_name_by_first_token(names)
    return {n: full_names[n.lower()] for n in names if " " not in n and n.lower() in full_names}


def apply_name_map(names: list[str], mapping: dict[str, str]) -> list[str]:
    """Rewrite names through `mapping` and drop duplicates, keeping the first."""
    result: list[str] = []
    for name in names:
        name = mapping.get(name, name)
        if name not in result:
            result.append(name)
    return result


def normalize_instrument_id(value: str | None) -> str:
    """`440_SmartSPIM1_20240325` -> `SmartSPIM1`, `FIP_1` -> `FIP1`, `4A` -> `4A`, missing -> ``."""
    if not value:
        return ""
    match = _INSTRUMENT_ID.match(value)
    core = match.group(1) if match else value
    return core.replace("_", "").replace("-", "")
