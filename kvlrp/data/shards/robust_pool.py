"""An ordered process-pool map that survives workers dying (killed, out of memory).

``multiprocessing.Pool.imap`` waits forever for the result of a worker that was killed; here a
dead worker breaks the pool, the pool is restarted, the oldest unfinished item is retried on
its own, and an item whose worker dies even alone becomes ``on_death(item)``.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                on_death: Callable[[T], R], window: int | None = None) -> Iterator[R]:
    """``fn(item)`` for every item, in order, computed by ``workers`` spawned processes.

    Parameters
    ----------
    fn
        Picklable (module-level) function.
    on_death
        Result for an item whose worker process died while computing it alone.
    window
        Items in flight at once (default ``2 * workers``): bounds the results held in memory.
    """
    context = multiprocessing.get_context("spawn")
    window = window or 2 * workers
    queue = deque(items)
    pending: deque[tuple[Any, Any]] = deque()
    executor = ProcessPoolExecutor(workers, mp_context=context)
    try:
        while queue or pending:
            if not _fill(executor, fn, queue, pending, window) and not pending:
                executor.shutdown(wait=True, cancel_futures=True)  # broken, nothing in flight
                executor = ProcessPoolExecutor(workers, mp_context=context)
                continue
            item, future = pending.popleft()
            try:
                yield future.result()
                continue
            except BrokenProcessPool:
                pass
            # a worker died: every unfinished item failed with it; find out which one it was
            executor.shutdown(wait=True, cancel_futures=True)
            queue.extendleft(reversed([i for i, _ in pending]))
            pending.clear()
            yield _alone(fn, item, context, on_death)
            executor = ProcessPoolExecutor(workers, mp_context=context)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def _fill(executor, fn, queue: deque, pending: deque, window: int) -> bool:
    """Submit queued items until ``window`` are in flight; False if the pool is broken (a
    worker died since the last result: the oldest pending item's result raises it)."""
    while queue and len(pending) < window:
        try:
            future = executor.submit(fn, queue[0])
        except BrokenProcessPool:
            return False
        pending.append((queue.popleft(), future))
    return True


def _alone(fn, item, context, on_death):
    with ProcessPoolExecutor(1, mp_context=context) as single:
        try:
            return single.submit(fn, item).result()
        except BrokenProcessPool:
            log.warning("worker process died on %r", item)
            return on_death(item)
