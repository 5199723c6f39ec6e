"""What the end-to-end tests use of an XMPP test server, whichever one runs.

:class:`~tests.servers.prosody.ProsodyServer` and :class:`~tests.servers.ejabberd.EjabberdServer`
both fit :class:`XmppServer`, so a test written against it runs on either (the
``xmpp_server`` fixture in tests/e2e/conftest.py gives each in turn).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from jinglefs.api import Account

__all__ = ["XmppServer"]


class XmppServer(Protocol):
    """A running (or about to run) XMPP server on loopback with accounts and proxy65."""

    domain: str
    host: str
    port: int
    proxy_jid: str
    proxy65_port: int
    ca_file: Path
    log_file: Path
    passwords: dict[str, str]

    def jid(self, user: str) -> str: ...

    def account(self, user: str, resource: str = "jinglefs") -> Account: ...

    def add_account(
        self, user: str, password: str | None = None, roster: Iterable[str] = ()
    ) -> Account: ...
