"""Fire-and-forget asyncio tasks started from Qt slots, kept alive and logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run ``coro`` on the (qasync) loop; exceptions are logged, never lost silently."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("background task failed", exc_info=exc)


def pending() -> int:
    return len(_tasks)


# One worker for disk and keyring work, so writes of the same file happen in order.
_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jinglefs-ui-io")


async def run_io(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (disk, keyring) off the GUI thread, in submission order."""
    return await asyncio.get_running_loop().run_in_executor(_io, fn, *args)


async def run_cpu(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call that may take long (walking a folder) off the GUI thread."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
