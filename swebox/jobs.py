"""The interruptible job runner behind every batch command (eval, validate, images, cache builds
and rollouts): a thread pool that, on an error or Ctrl-C, starts nothing new and closes the
sandboxes this process holds, so running jobs end at once instead of finishing their work.

It sits above `sandbox` (whose `close_all` it calls) and below `eval`, `agents` and `cli`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from swebox.sandbox.lifecycle import close_all

T = TypeVar("T")
R = TypeVar("R")

# Set when a run is being torn down (an error, Ctrl-C): jobs still running see their sandboxes
# close under them, and must neither start new work (grading a half episode) nor record a
# result that a resume would then take as done.
_stopping = threading.Event()


def stopping() -> bool:
    return _stopping.is_set()


def run_all(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`fn` over `items` in a thread pool, yielding results as they finish. On an error or
    Ctrl-C nothing new starts and every open sandbox of this process is closed, so running
    jobs end at once instead of finishing their work first."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    _stopping.clear()
    try:
        futures = [pool.submit(fn, item) for item in items]
        for fut in as_completed(futures):
            yield fut.result()
    except GeneratorExit:  # the caller stopped early: no need to tear sandboxes down
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:
        _stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        close_all()
        raise
    finally:
        pool.shutdown()
