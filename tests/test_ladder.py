"""jinglefs.ladder: each rung's connection limit, and when the fast path applies (README
"How the ladder decides").  The e2e side is tests/e2e/test_fast_path.py and tests/natlab."""

from __future__ import annotations

from typing import Any

from jinglefs import ladder
from jinglefs.api import Settings, Timeouts
from jinglefs.ice import negotiator as ice_negotiator
from jinglefs.ice.negotiator import IceNegotiator
from jinglefs.ice.protocol import IceCandidate, IceUdpTransport, WebRtcDataChannelTransport
from jinglefs.jingle import ns
from jinglefs.s5b.negotiator import S5bDirectNegotiator, S5bNegotiator

KINDS = ("ice", "s5b", "s5b-direct", "ibb")


class _SaysDirect(IceNegotiator):
    """An ICE negotiator whose candidates showed a direct path (no context needed)."""

    def __init__(self) -> None:
        pass

    def direct_path(self) -> str | None:
        return "the contact's address 192.168.1.23 is on our network 192.168.1.0/24"


def test_fast_path_only_on_auto_with_socks5_still_on_the_ladder() -> None:
    ice = _SaysDirect()
    why = "the contact's address 192.168.1.23 is on our network 192.168.1.0/24"
    assert ladder.fast_path(ice, ["s5b", "ibb"], Settings()) == why
    assert ladder.fast_path(ice, [], Settings()) is None  # --transport ice
    assert ladder.fast_path(ice, ["ibb"], Settings()) is None  # a peer without SOCKS5
    assert ladder.fast_path(ice, ["s5b"], Settings(direct_first=False)) is None
    # relay-only: the contact must not learn our addresses, SOCKS5 direct would tell them
    assert ladder.fast_path(ice, ["s5b"], Settings(ice_relay_only=True)) is None
    other: Any = object()  # a SOCKS5 or IBB negotiator accepted first: nothing to skip
    assert ladder.fast_path(other, ["ibb"], Settings()) is None


def test_each_rung_has_its_limit_and_timeouts_transport_caps_them() -> None:
    assert [ladder.connect_limit(k, Settings()) for k in KINDS] == [
        ice_negotiator.CONNECT_LIMIT, S5bNegotiator.connect_limit,
        S5bDirectNegotiator.connect_limit, ladder.IBB_CONNECT_LIMIT] == [10.0, 6.0, 3.5, 20.0]
    capped = Settings(timeouts=Timeouts(transport=4.0))
    assert [ladder.connect_limit(k, capped) for k in KINDS] == [4.0, 4.0, 3.5, 4.0]


def test_the_fast_path_rung_is_no_row_of_the_ladder() -> None:
    """Never offered first, never forced, nothing announced for it."""
    assert ladder.DIRECT.kind not in {r.kind for r in ladder.LADDER}
    assert ladder.rung("s5b-direct") is ladder.DIRECT and ladder.label("s5b-direct") == \
        "SOCKS5 direct"
    everything = frozenset({ns.WEBRTC_DC, ns.S5B_TRANSPORT, ns.IBB_TRANSPORT})
    assert ladder.rungs_for(everything, ("ice", "s5b", "ibb")) == ["ice", "s5b", "ibb"]
    assert ladder.DIRECT.factory.namespace == ns.S5B_TRANSPORT  # the peer sees SOCKS5


async def test_the_ice_negotiator_reads_the_peer_candidates() -> None:
    """direct_path() sees the candidates of every payload from the peer, trickled ones
    too (here before its answer), and nothing without them."""
    ctx: Any = None  # offer/answer/connect are not called
    neg = IceNegotiator(ctx)
    assert neg.direct_path() is None
    loopback = IceCandidate(1, "1", "127.0.0.1", 40000, 2130706431, "host")
    neg.transport_info(WebRtcDataChannelTransport(
        5000, 262144, IceUdpTransport("abcd", "a" * 22, (loopback,))))
    assert neg.direct_path() == "the contact's address 127.0.0.1 is on our network 127.0.0.0/8"
