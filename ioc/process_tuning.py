"""Process-wide tuning shared by the long-running services (worker, API)."""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

__all__ = ["YOUNG_COLLECTION_EVERY", "tune_garbage_collection"]

# Allocations between young-generation collections (CPython's default: 700).
YOUNG_COLLECTION_EVERY = 200_000


def tune_garbage_collection() -> None:
    """Exempt what start-up built from garbage collection, and collect the young
    generation less often. Call it once, when start-up is over.

    Freezing: without it every full collection walked every module, model and service:
    in a loaded worker, 100-300 ms pauses every few seconds, which were the tail of the
    alert latency (measured with ``gc.callbacks`` under ``ioc bench pipeline``; 20-40 ms
    once frozen).

    The young threshold: decoding a gateway envelope allocates hundreds of objects
    per event that live until the batch is stored, so at the default threshold the
    collector ran every few events and walked them again and again: decoding took
    about 13 us of CPU per edge read in the worker against 3 us in isolation. Most
    garbage is freed by reference counting anyway; cycles wait a little longer.
    Every 50,000 allocations still cost a worker storing 200,000 events 1 s of CPU in
    collections (``gc.callbacks``), as a batch of 10,000 reads outlives several of
    them; every 200,000: 0.3 s.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)
    logger.info("%d start-up objects exempt from garbage collection; young generation collected every "
                "%d allocations", gc.get_freeze_count(), YOUNG_COLLECTION_EVERY)
