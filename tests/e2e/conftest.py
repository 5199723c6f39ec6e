"""Two real jinglefs clients logged in to the real loopback Prosody."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from jinglefs.api import Settings, Timeouts
from jinglefs.client import Client, connect
from tests.servers.prosody import ProsodyServer

FAST = Settings(timeouts=Timeouts(connect=15, accept=30, iq=15, transport=10, stall=20,
                                  peer_gone=3))


async def login(prosody: ProsodyServer, user: str, resource: str = "jinglefs",
                settings: Settings = FAST) -> Client:
    return await connect(prosody.account(user, resource=resource), settings)


@pytest.fixture
async def alice(prosody: ProsodyServer) -> AsyncIterator[Client]:
    client = await login(prosody, "alice")
    yield client
    await client.aclose()


@pytest.fixture
async def bob(prosody: ProsodyServer) -> AsyncIterator[Client]:
    client = await login(prosody, "bob")
    yield client
    await client.aclose()


def settings(**kw: object) -> Settings:
    return replace(FAST, **kw)  # type: ignore[arg-type]
