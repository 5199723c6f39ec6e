"""Talking to the person at the terminal: whether there is one, and asking a question."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from contextlib import suppress

__all__ = ["stdin_isatty", "interactive", "read_answer", "ask"]


def stdin_isatty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def interactive(args: argparse.Namespace) -> bool:
    """May the command ask questions?  Not with --no-input, nor without a terminal."""
    return not getattr(args, "no_input", False) and stdin_isatty()


def read_answer(prompt: str) -> str:
    """Ask on stderr, read one line from stdin (runs in a thread)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline()


async def ask(prompt: str) -> str:
    """:func:`read_answer` without blocking the loop.  A daemon thread, so a pending
    prompt never keeps the process alive after Ctrl-C."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[str] = loop.create_future()

    def deliver(answer: str) -> None:
        if not fut.done():
            fut.set_result(answer)

    def worker() -> None:
        try:
            answer = read_answer(prompt)
        except (OSError, ValueError, EOFError):
            answer = ""
        with suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(deliver, answer)

    threading.Thread(target=worker, name="jinglefs-prompt", daemon=True).start()
    return await fut
