"""The publish guard: a build that loses too many rows does not replace the published table.

A nightly build reading a half-empty or failing source would otherwise publish a gutted table
over a good one. The IO manager asks `publish_refusal` before writing anything; on a refusal the
published table stays as it is (and readable) and the asset fails, unless forced. A published
table that cannot be read (e.g. a truncated file) counts as no published table: `CacheStore` logs
a warning naming it, and the build replaces it.
"""

from __future__ import annotations

DEFAULT_MAX_ROW_DROP_FRACTION = 0.2


class PublishRefused(RuntimeError):
    """A build was not published because of the guard."""


def publish_refusal(table: str, published_rows: int | None, new_rows: int, max_drop_fraction: float) -> str | None:
    """Why `new_rows` must not replace `published_rows` (None: no readable published table), or None if it may."""
    if not published_rows:
        return None
    if new_rows == 0:
        return f"{table}: the build has 0 rows, the published table has {published_rows}"
    drop = (published_rows - new_rows) / published_rows
    if drop > max_drop_fraction:
        return (
            f"{table}: the build has {new_rows} rows, {drop:.0%} fewer than the {published_rows} published "
            f"(the limit is a {max_drop_fraction:.0%} drop)"
        )
    return None
