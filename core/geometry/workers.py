"""OpenCV work spread over spawned processes, one per core: the one place a pool is started.

Workers are spawned, not forked: a parent that has run torch or OpenCV thread pools can leave a
forked child waiting on a lock no thread will release. Each worker runs OpenCV on one thread
(its own threads would oversubscribe the cores), and no worker outlives the call, so a job's
lock is free when it reports done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from multiprocessing import get_context
from typing import TypeVar

import cv2

T = TypeVar("T")
R = TypeVar("R")


def one_thread() -> None:
    """Worker initialiser (also right for work done in-process by a single worker)."""
    cv2.setNumThreads(1)


def spawn_map(fn: Callable[[T], R], jobs: Iterable[T], workers: int, chunksize: int = 1) -> list[R]:
    """[fn(j) for j in jobs], in order, in `workers` spawned processes.

    Args:
        fn: a module-level function (it is pickled by name); jobs: its arguments, consumed lazily.
        workers: processes, >= 2 (callers run small or single-worker jobs in-process).
        chunksize: jobs sent to a worker at once.

    Raises:
        Whatever fn raised, after every worker has been stopped.
    """
    pool = get_context("spawn").Pool(workers, initializer=one_thread)
    try:
        return list(pool.imap(fn, jobs, chunksize=chunksize))
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()
