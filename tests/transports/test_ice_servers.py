"""Which STUN/TURN servers the ICE rung uses: the manual settings merged with what the
server announces (XEP-0215), and the announced ones cached until their credentials expire.
No network: the XEP-0215 lookup is replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from jinglefs.api import Settings
from jinglefs.ice import negotiator as ice_negotiation
from jinglefs.ice.negotiator import announced_ice_servers, manual_ice_servers, merge_ice_servers
from jinglefs.ice.protocol import IceServers
from jinglefs.jingle.model import Role
from jinglefs.negotiator import NegotiationContext


def _ctx(services: dict[str, object], settings_: Settings | None = None
         ) -> NegotiationContext:
    return NegotiationContext(
        role=Role.INITIATOR, local_jid="alice@example.org/res", peer_jid="bob@example.org/x",
        settings=settings_ or Settings(), connection=SimpleNamespace(xmpp="xmpp"),  # type: ignore[arg-type]
        send_transport_info=lambda payload: None, new_id=lambda: "id", services=services)


@pytest.mark.parametrize("expires, again", [
    (timedelta(hours=1), False),  # credentials still valid: cached
    (timedelta(seconds=30), True),  # about to expire (EXPIRY_MARGIN): fetched again
    (-timedelta(hours=1), True),  # expired
    (None, False),  # no expiry: cached for the client's life
])
async def test_announced_servers_are_fetched_once_until_expiry(
        monkeypatch: pytest.MonkeyPatch, expires: timedelta | None, again: bool) -> None:
    calls: list[tuple[object, str]] = []

    async def fetch(xmpp: object, domain: str, **kw: Any) -> IceServers:
        calls.append((xmpp, domain))
        return IceServers(turn_host="turn.example.org", turn_username="u", turn_password="p",
                          turn_expires=None if expires is None else datetime.now(UTC) + expires)

    monkeypatch.setattr(ice_negotiation, "fetch_ice_servers", fetch)
    services: dict[str, object] = {}
    first = await announced_ice_servers(_ctx(services))
    second = await announced_ice_servers(_ctx(services))
    assert first is not None and first.turn_host == "turn.example.org" and second is not None
    assert calls == [("xmpp", "example.org")] * (2 if again else 1)


async def test_failed_lookup_is_retried_and_nothing_found_is_cached(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def fetch(xmpp: object, domain: str, **kw: Any) -> IceServers | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("stream closed")
        return None

    monkeypatch.setattr(ice_negotiation, "fetch_ice_servers", fetch)
    services: dict[str, object] = {}
    assert await announced_ice_servers(_ctx(services)) is None  # the error: no servers
    assert calls == 1
    assert await announced_ice_servers(_ctx(services)) is None  # asked again: none offered
    assert calls == 2
    assert await announced_ice_servers(_ctx(services)) is None  # cached (RETRY_NOTHING)
    assert calls == 2


def test_manual_servers_and_merge_with_announced() -> None:
    manual = manual_ice_servers(("bad host", "stun:s.example.org:3479", "s2.example.org"),
                                ("turn:nopass@t0", "turn:u:p@t.example.org?transport=tcp"))
    assert manual == IceServers(stun_host="s.example.org", stun_port=3479,
                                turn_host="t.example.org", turn_port=3478, turn_username="u",
                                turn_password="p", turn_transport="tcp")
    assert manual_ice_servers((), ()) is None
    expiry = datetime.now(UTC) + timedelta(hours=1)
    announced = IceServers(stun_host="stun.server", turn_host="turn.server",
                           turn_username="su", turn_password="sp", turn_expires=expiry)
    # Manual wins per kind; what the user did not configure comes from the server.
    assert merge_ice_servers(manual, announced) == manual
    stun_only = manual_ice_servers(("mine.example",), ())
    merged = merge_ice_servers(stun_only, announced)
    assert merged is not None and merged.stun_host == "mine.example"
    assert (merged.turn_host, merged.turn_username, merged.turn_expires) == (
        "turn.server", "su", expiry)
    assert merge_ice_servers(None, announced) == announced
    assert merge_ice_servers(stun_only, None) == stun_only
