"""Pausing Python's cyclic garbage collector around allocation-heavy, cycle-free work."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a table or a frame is made.

    Building a table (records, rows) or a frame (the Python lists of a list column) allocates
    hundreds of thousands of small objects that make no reference cycles; the collector's full
    passes over that growing heap cost up to 70% of a build at 100,000 records and doubled the time
    of `asset_basics()` (benchmarks/README.md). Reference counting still frees everything; the
    collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
