"""One ordered worker thread per transfer, for blocking file I/O and hashing.

hashlib and file reads/writes release the GIL, so running them on a worker thread
lets the event loop keep moving bytes on the network while the second core hashes
and writes (perf-anchors.md "What limits each": receive + hash + write on one core
caps loopback at ~0.8 GB/s).  A single thread keeps jobs in submission order, which
hashing needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class OrderedWorker:
    """Runs jobs one at a time, in order, off the event loop."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[asyncio.Future[Any]] = deque()

    def start(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(*args)``; the caller awaits the returned future (in order)."""
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        self._pending.append(fut)
        return fut

    async def submit(self, fn: Callable[..., object], *args: Any, max_pending: int) -> None:
        """Queue a job whose result is not needed, waiting while ``max_pending`` are queued.

        Raises the exception of any earlier job that failed.
        """
        while len(self._pending) >= max_pending:
            await self._pending.popleft()
        self.start(fn, *args)

    async def pop(self) -> Any:
        """Await the oldest queued job and return its result."""
        return await self._pending.popleft()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drain(self) -> None:
        """Wait for every queued job, raising the first failure."""
        while self._pending:
            await self._pending.popleft()

    async def settle(self) -> None:
        """After a failure or cancellation: drop jobs not yet started, wait for the running one.

        Never raises; afterwards no job touches the file any more.
        """
        for fut in self._pending:
            fut.cancel()
        while self._pending:
            fut = self._pending.popleft()
            with contextlib.suppress(BaseException):
                await fut

    def shutdown(self, *, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
