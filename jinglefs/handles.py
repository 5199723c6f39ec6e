"""Concrete :class:`~jinglefs.api.TransferLike` / :class:`~jinglefs.api.OfferLike` objects.

A :class:`TransferHandle` keeps every event it emitted, so each ``events()`` iterator
replays from the first one; the GUI and the CLI can both listen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from . import errors
from .api import TransferLike
from .events import (
    Completed,
    Direction,
    Failed,
    FileInfo,
    PathKind,
    Progress,
    Protection,
    TransferEvent,
    TransferState,
    TransportSelected,
    next_state,
)


def failed_event(transfer_id: str, exc: errors.JingleFSError) -> Failed:
    """The ``Failed`` event for ``exc``: kind and exit code from ``errors.ERROR_KINDS``."""
    return Failed(transfer_id, reason=exc.user_message, error=errors.kind_of(exc),
                  exit_code=errors.exit_code_for(exc))


class TransferHandle:
    def __init__(self, transfer_id: str, peer: str, direction: Direction, file: FileInfo,
                 cancel: Callable[[], Awaitable[None]]) -> None:
        self.id = transfer_id
        self.peer = peer
        self.direction = direction
        self.file = file
        self._cancel = cancel
        self._history: list[TransferEvent] = []
        self._changed = asyncio.Event()
        self._state = TransferState.OFFERED
        self._path: PathKind | None = None
        #: what protects the bytes on the current path (the last TransportSelected)
        self.protection: Protection | None = None
        self.error: errors.JingleFSError | None = None
        #: bytes moved so far (updated on every chunk; Progress events are throttled)
        self.progress_done = 0

    @property
    def state(self) -> TransferState:
        return self._state

    @property
    def path(self) -> PathKind | None:
        return self._path

    @property
    def done(self) -> bool:
        return self._state.finished

    def emit(self, event: TransferEvent) -> None:
        if self.done:
            return  # the terminal event is the last one, whatever comes later
        if isinstance(event, Progress) and self._history and \
                isinstance(self._history[-1], Progress):
            self._history[-1] = event  # keep history small: only the latest progress
        else:
            self._history.append(event)
        if isinstance(event, TransportSelected):
            self._path = event.path
            self.protection = event.protection
        self._state = next_state(self._state, event)
        self._changed.set()
        self._changed = asyncio.Event()

    def fail(self, exc: errors.JingleFSError) -> None:
        if self.done:
            return
        self.error = exc
        self.emit(failed_event(self.id, exc))

    async def events(self) -> AsyncIterator[TransferEvent]:
        index = 0
        while True:
            changed = self._changed
            while index < len(self._history):
                event = self._history[index]
                index += 1
                yield event
                if isinstance(event, Completed | Failed):
                    return
            await changed.wait()
            # A Progress may have been replaced in place: step back to see the newest.
            if index and index == len(self._history) and \
                    isinstance(self._history[-1], Progress):
                index -= 1

    async def wait(self) -> TransferEvent:
        async for event in self.events():
            if isinstance(event, Completed):
                return event
            if isinstance(event, Failed):
                raise self.error or errors.TransferError(event.reason)
        raise errors.TransferError("transfer ended without a result")

    async def cancel(self) -> None:
        if not self.done:
            await self._cancel()
            self.fail(errors.Cancelled("cancelled here"))


class OfferHandle:
    """An incoming offer, one action of the sender (one session, or the one-file sessions
    the client gathered, docs/protocol.md §3.5): accept all its files into a folder, or
    decline them all."""

    def __init__(self, offer_id: str, peer: str, files: Sequence[FileInfo], from_contact: bool,
                 accept: Callable[[Path, Sequence[str] | None], Awaitable[list[TransferLike]]],
                 decline: Callable[[], Awaitable[None]]) -> None:
        self.id = offer_id
        self.peer = peer
        self.files: Sequence[FileInfo] = list(files)
        self.from_contact = from_contact
        self._accept = accept
        self._decline = decline
        self.answered = False

    async def accept(self, dest_dir: Path, *, filenames: Sequence[str] | None = None
                     ) -> list[TransferLike]:
        if self.answered:
            raise errors.UsageError("this offer was already answered")
        self.answered = True
        return await self._accept(dest_dir, filenames)

    async def decline(self) -> None:
        if not self.answered:
            self.answered = True
            await self._decline()
