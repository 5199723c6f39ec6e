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

__all__ = ["XmppAccounts", "XmppServer"]


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


class XmppAccounts:
    """Login details for the accounts of a test server: what ProsodyServer and
    EjabberdServer share, written once."""

    domain: str
    host: str
    port: int
    ca_file: Path
    passwords: dict[str, str]
    require_encryption: bool

    def jid(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def account(self, user: str, resource: str = "jinglefs") -> Account:
        """Login details for *user*: connect to 127.0.0.1:port, trust ``ca_file``."""
        if user not in self.passwords:
            raise KeyError(f"no account {user!r} on {self.domain} (add_account first)")
        return Account(
            jid=self.jid(user),
            password=self.passwords[user],
            server=self.host,
            port=self.port,
            ca_file=str(self.ca_file),
            allow_plaintext=not self.require_encryption,
            resource=resource,
        )
