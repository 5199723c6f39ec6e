"""One ICE peer for the NAT lab, run inside a lab namespace by tests/natlab.

    ip netns exec NS python -m tests.natlab.ice_peer --initiator --stun H:P [--turn H:P U P]

Signalling with the test process is JSON lines over stdin/stdout: ``{"payload": xml}`` each
way (our transport first when initiator), then the initiator sends ``--size`` random bytes
and both print ``{"result": {...}}`` with the selected pair and the sha-256 seen.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any

from jinglefs.ice.channel import IceSession
from jinglefs.ice.protocol import IceServers, WebRtcDataChannelTransport


def _put(**msg: Any) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


async def _get(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise SystemExit("test process went away")
    msg: dict[str, Any] = json.loads(line)
    return msg


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    servers = IceServers()
    if args.stun:
        host, port = args.stun.rsplit(":", 1)
        servers = IceServers(stun_host=host, stun_port=int(port))
    if args.turn:
        (hp, user, password) = args.turn
        host, port = hp.rsplit(":", 1)
        servers = IceServers(
            stun_host=servers.stun_host,
            stun_port=servers.stun_port,
            turn_host=host,
            turn_port=int(port),
            turn_username=user,
            turn_password=password,
            turn_transport=args.turn_transport,
        )
    ice = IceSession(initiator=args.initiator, servers=servers, relay_delay=args.relay_delay)

    async def remote() -> None:
        el = ET.fromstring((await _get(reader))["payload"])
        await ice.add_remote(WebRtcDataChannelTransport.from_element(el))

    def local(p: WebRtcDataChannelTransport) -> None:
        _put(payload=ET.tostring(p.to_element(), encoding="unicode"))

    if args.initiator:
        local(await ice.gather())
        await remote()
    else:
        await remote()
        local(await ice.gather())
    started = time.perf_counter()
    try:
        stream = await ice.connect(args.timeout)
    except Exception as exc:  # reported to the test, which asserts on it
        _put(result={"error": f"{type(exc).__name__}: {exc}"})
        return
    connect_s = time.perf_counter() - started
    pair = ice.selected_pair()
    assert pair is not None
    h = hashlib.sha256()
    if args.initiator:
        data = os.urandom(args.size)
        h.update(data)
        await stream.send(data)
        await _get(reader)  # the responder has it all
    else:
        got = 0
        while got < args.size:
            chunk = await stream.receive(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
    _put(
        result={
            "path": pair.path.value,
            "pair": pair.detail,
            "sha256": h.hexdigest(),
            "connect_s": round(connect_s, 3),
        }
    )
    if not args.initiator:
        await _get(reader)  # keep the connection until the initiator is done
    await stream.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--initiator", action="store_true")
    parser.add_argument("--stun")
    parser.add_argument("--turn", nargs=3, metavar=("HOST:PORT", "USER", "PASSWORD"))
    parser.add_argument("--turn-transport", default="udp", choices=["udp", "tcp"])
    parser.add_argument("--relay-delay", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args()))
