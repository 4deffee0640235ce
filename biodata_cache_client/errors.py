"""The client's exceptions: a table that is not there, and an object that could not be read."""

from __future__ import annotations


class TableNotFoundError(LookupError):
    """The table (or custom table) is not published in the selected version folder."""


class CacheReadError(OSError):
    """An object exists but could not be read (network, permissions, corrupt file); the message names it."""


class CorruptObjectError(CacheReadError):
    """An object was read but its content is not what the cache layout says (e.g. invalid JSON)."""
