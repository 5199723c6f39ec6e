"""What the real Prosody says about an account's sessions (``prosodyctl shell``): the ground
truth for "one client per account" and "every instance its own resource"."""

from __future__ import annotations

import asyncio
import time

from tests.servers.prosody import ProsodyServer, lua_str

#: Prosody answers in about half a second; a session that closed is gone within this.
SETTLE = 15.0


def resources(server: ProsodyServer, user: str) -> list[str]:
    """The resources of ``user``'s c2s sessions that Prosody holds right now, sorted (its
    ``bare_sessions`` table: bound resources, whether or not they sent presence)."""
    code = ("> local s = prosody.bare_sessions[" + lua_str(server.jid(user)) + "]; "
            "local out = {}; if s then for r in pairs(s.sessions) do out[#out + 1] = r end "
            "end; table.sort(out); return \"RESOURCES[\" .. table.concat(out, \"|\") .. \"]\"")
    text = server.shell(code)
    start = text.index("RESOURCES[") + len("RESOURCES[")
    listed = text[start:text.index("]", start)]
    return listed.split("|") if listed else []


async def resources_async(server: ProsodyServer, user: str) -> list[str]:
    return await asyncio.to_thread(resources, server, user)


async def wait_for_resources(server: ProsodyServer, user: str, expected: int,
                             timeout: float = SETTLE) -> list[str]:
    """Poll until ``user`` has ``expected`` sessions (a closed TCP connection takes Prosody
    a moment to notice); fail with what it has after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await resources_async(server, user)
        if len(found) == expected:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{user} has {len(found)} sessions, expected {expected}: "
                                 f"{found}")
        await asyncio.sleep(0.2)
