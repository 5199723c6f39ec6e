"""What the GUI tests (and scripts/screenshots) need beyond tests/fakes.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from jinglefs.api import Contact, Resource

ALL = frozenset({"ice", "s5b", "ibb"})


def roster() -> list[Contact]:
    """Alice (laptop can receive, phone cannot), Bob (offline), Carol (online, no FT)."""
    return [
        Contact("alice@example.org", "Alice", "both", resources=(
            Resource("alice@example.org/laptop", priority=10, can_receive_files=True,
                     transports=ALL, client_name="jinglefs"),
            Resource("alice@example.org/phone", show="away", priority=0,
                     can_receive_files=False, client_name="Chat app"),
        )),
        Contact("bob@example.org", "Bob", "both"),
        Contact("carol@example.net", "Carol", "both", resources=(
            Resource("carol@example.net/web", can_receive_files=False),
        )),
        Contact("dave@example.com", "Dave", "both", resources=(
            Resource("dave@example.com/desktop", show="dnd", can_receive_files=True,
                     transports=frozenset({"s5b", "ibb"}), client_name="Gajim"),
        )),
    ]


class MemoryStore:
    """An AccountStore in memory; ``keyring=False`` behaves like a machine without one."""

    def __init__(self, root: Path, accounts: list[object] | None = None,
                 passwords: dict[str, str] | None = None, keyring: bool = True) -> None:
        self.root = root
        self.accounts = list(accounts or [])
        self.passwords = dict(passwords or {})
        self.keyring = keyring
        self.saved: list[object] = []

    def load(self) -> list[object]:
        return list(self.accounts)

    def save(self, info: object) -> None:
        self.saved.append(info)
        self.accounts = [info]

    def set_password(self, jid: str, password: str) -> bool:
        if not self.keyring:
            return False
        self.passwords[jid] = password
        return True

    def password(self, jid: str) -> str | None:
        return self.passwords.get(jid)

    def state_dir(self) -> Path:
        return self.root / "state"

    def downloads_dir(self) -> Path:
        return self.root / "Downloads"


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, title: str, body: str) -> None:
        self.sent.append((title, body))


async def until(cond: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Let the loop run until ``cond()`` is true; fail with ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what or cond}")
        await asyncio.sleep(0.01)
