"""Numbers read from environment variables: one reading, and one wording of a bad value.

    number_setting("BIODATA_SUBJECTS_PER_RUN", None, "subjects", "500", whole=True, positive=True)

An unset or blank variable gives the default. A value that is not such a number raises a
ValueError whose message is the one line to show: the variable, its value, what it must be and
what to do (`BIODATA_SUBJECTS_PER_RUN='ten' is not a positive whole number of subjects: set it to
e.g. 500, or unset it`). Each caller decides what a bad value does: stop with that line, or warn
and go on with the default.
"""

from __future__ import annotations

import os


def number_setting(variable: str, default: float | None, unit: str, example: str, *, whole: bool = False,
                   positive: bool = False, text: str | None = None) -> float | None:
    """The number of `unit` that `variable` holds (`text`: this value instead), else `default`.
    Never negative; `whole`: digits only (an int); `positive`: not 0 either."""
    value = (os.environ.get(variable, "") if text is None else text).strip()
    if not value:
        return default
    if whole:
        number = int(value) if value.isdigit() else None
    else:
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not number >= 0 or (positive and number == 0):  # `not >=` also refuses NaN
        kind = f"{'positive ' if positive else ''}{'whole ' if whole else ''}number"
        raise ValueError(f"{variable}={value!r} is not a {kind} of {unit}: set it to e.g. {example}, or unset it")
    return number
