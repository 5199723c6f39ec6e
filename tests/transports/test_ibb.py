"""In-Band Bytestreams: the pure XEP-0047/0261 rules and two IbbStreams over an in-memory port.

No XMPP here: ``FakeNet`` carries open/data/close between :class:`IbbRouter` s on the event
loop (one ``call_soon`` per hop, like a server would) and lets a test tamper with stanzas,
drop answers or play a third party.  Every transfer is checked byte for byte with sha-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest

from jinglefs.errors import RemoteProtocolError, StreamClosed, TransportError
from jinglefs.ibb.protocol import (
    MAX_BLOCK_SIZE,
    IbbTransport,
    ReceiveState,
    SendSeq,
    answer_offer,
    check_open_block_size,
    decode_block,
    encode_block,
    negotiate_block_size,
    next_seq,
    parse_block_size,
    parse_seq,
    seq_acceptable,
    validate_sid,
)
from jinglefs.ibb.stream import (
    AckCallback,
    IbbError,
    IbbProtocolViolation,
    IbbRouter,
    IbbStream,
    StreamState,
)
from jinglefs.streams import ByteStream

pytestmark = pytest.mark.timeout(30)

ALICE = "alice@example.org/laptop"
BOB = "bob@example.org/phone"
CAROL = "carol@example.org/evil"


# =========================================================================== pure rules


def test_seq_wraps_at_16_bits() -> None:
    assert next_seq(0) == 1
    assert next_seq(65534) == 65535
    assert next_seq(65535) == 0


def test_send_seq_wraps_or_not() -> None:
    wrapping = SendSeq(65534)
    assert [wrapping.take() for _ in range(4)] == [65534, 65535, 0, 1]
    conversations = SendSeq(65534, wrap=False)
    assert [conversations.take() for _ in range(4)] == [65534, 65535, 65536, 65537]


def test_seq_acceptable_is_lenient_only_about_wrapping() -> None:
    assert seq_acceptable(5, 5)
    assert not seq_acceptable(6, 5) and not seq_acceptable(4, 5)
    # the 65537th block: spec peers send 0, non-wrapping peers 65536
    assert seq_acceptable(0, 65536) and seq_acceptable(65536, 65536)
    assert not seq_acceptable(2, 65536) and not seq_acceptable(65535, 65536)
    # Libervia wraps modulo 65535 (docs/interop.md §7.4): 0 for the 65536th block, 1 next
    assert seq_acceptable(0, 65535) and seq_acceptable(1, 65536)
    assert not seq_acceptable(65535, 65535 + 65535)
    assert seq_acceptable(1, 65537) and seq_acceptable(65537, 65537)
    assert not seq_acceptable(0, 65537)


def test_parse_seq() -> None:
    assert parse_seq("0") == 0 and parse_seq("65536") == 65536
    for bad in (None, "", "-1", "x", "1.5"):
        with pytest.raises(RemoteProtocolError) as info:
            parse_seq(bad)
        assert info.value.condition == "bad-request"


def test_receive_state_across_the_wrap_with_both_kinds_of_peer() -> None:
    for wrap in (True, False):
        state = ReceiveState(4, first_count=65534)
        seqs = SendSeq(65534, wrap=wrap)
        got = b"".join(state.accept(str(seqs.take()), encode_block(bytes([i] * 4)))
                       for i in range(5))
        assert got == bytes([0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4)
        assert state.count == 65539 and not state.failed


@pytest.mark.parametrize("seq", ["1", "2", "65536"])
def test_receive_state_rejects_reuse_and_gaps_then_stays_failed(seq: str) -> None:
    state = ReceiveState(4096)
    assert state.accept("0", "QUJD") == b"ABC"
    with pytest.raises(RemoteProtocolError) as info:
        state.accept("0" if seq == "1" else seq, "QUJD")  # reused 0, gap to 2, or 65536 at 1
    assert info.value.condition == "unexpected-request"
    assert state.failed
    with pytest.raises(RemoteProtocolError):
        state.accept("1", "QUJD")  # the right seq, but the stream is closed now


@pytest.mark.parametrize("text", ["QUJ", "QUJD=", "QU=D", "QQ==QQ==", "Q!JD", "==QQ", "QUJDé"])
def test_decode_block_rejects_bad_base64(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_block(text, 4096)
    assert info.value.condition == "bad-request"


def test_decode_block_accepts_valid_and_wrapped_base64() -> None:
    payload = os.urandom(100)
    text = encode_block(payload)
    assert decode_block(text, 100) == payload
    wrapped = "\n".join(text[i:i + 20] for i in range(0, len(text), 20)) + "\n"
    assert decode_block(wrapped, 100) == payload
    assert decode_block("", 1) == b"" and decode_block(None, 1) == b""


def test_decode_block_rejects_chunk_over_block_size() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_block(encode_block(bytes(101)), 100)
    assert info.value.condition == "bad-request"


def test_block_size_parsing_and_negotiation() -> None:
    assert parse_block_size("4096") == 4096 and parse_block_size(65535) == 65535
    for bad in (None, "0", "65536", "x", "-5", 0, 70000):
        with pytest.raises(RemoteProtocolError):
            parse_block_size(bad)
    assert negotiate_block_size(8192, 4096) == 4096  # lowered to our limit
    assert negotiate_block_size(2048, 4096) == 2048  # never raised above the offer
    assert negotiate_block_size(65535, 10**6) == MAX_BLOCK_SIZE
    with pytest.raises(RemoteProtocolError):
        negotiate_block_size(70000)


def test_open_block_size_against_the_jingle_agreement() -> None:
    assert check_open_block_size("4096", 4096) == 4096
    assert check_open_block_size("1024", 4096) == 1024
    with pytest.raises(RemoteProtocolError) as info:
        check_open_block_size("8192", 4096)
    assert (info.value.condition, info.value.error_type) == ("resource-constraint", "modify")


def test_answer_offer_keeps_sid_and_never_raises_block_size() -> None:
    assert answer_offer(IbbTransport("ibb-7", 65535), 8192) == IbbTransport("ibb-7", 8192)
    assert answer_offer(IbbTransport("ibb-7", 2048), 8192) == IbbTransport("ibb-7", 2048)
    assert answer_offer(IbbTransport("s", 4096, "message")).stanza == "message"


def test_validate_sid() -> None:
    assert validate_sid("ibb-1_a.b:c") == "ibb-1_a.b:c"
    for bad in (None, "", "a b", "a<b", "a'b"):
        with pytest.raises(RemoteProtocolError):
            validate_sid(bad)


# =========================================================================== fake network


class FakeReply:
    def __init__(self, net: FakeNet, replier: str, on_done: AckCallback) -> None:
        self.net, self.replier, self.on_done = net, replier, on_done

    def ack(self) -> None:
        self.net.acks += 1
        if not self.net.drop_acks:
            asyncio.get_running_loop().call_soon(self.on_done, None)

    def reject(self, condition: str, error_type: str = "cancel", text: str = "") -> None:
        self.net.errors.append((self.replier, condition))
        err = IbbError(text or condition, condition=condition, error_type=error_type)
        asyncio.get_running_loop().call_soon(self.on_done, err)


class FakeNet:
    """Routers by JID; every stanza hop is one call_soon."""

    def __init__(self) -> None:
        self.routers: dict[str, IbbRouter] = {}
        #: (sender, kind, seq or None) for every stanza sent
        self.wire: list[tuple[str, str, int | None]] = []
        #: (who answered, condition) for every error answer
        self.errors: list[tuple[str, str]] = []
        self.acks = 0
        self.drop_acks = False
        self.message_mode = False
        self.tamper: Callable[[int, str], tuple[str, str]] | None = None
        self.inflight = 0
        self.max_inflight = 0

    def router(self, jid: str) -> IbbRouter:
        self.routers[jid] = IbbRouter()
        return self.routers[jid]

    def later(self, fn: Callable[..., Any], *args: Any) -> None:
        asyncio.get_running_loop().call_soon(fn, *args)


class FakePort:
    def __init__(self, net: FakeNet, me: str, peer: str, sid: str) -> None:
        self.net, self.me, self.peer, self.sid = net, me, peer, sid
        self.released = False

    def _target(self) -> IbbRouter:
        return self.net.routers[self.peer]

    def send_open(self, block_size: int, on_done: AckCallback) -> None:
        self.net.wire.append((self.me, "open", None))
        reply = FakeReply(self.net, self.peer, on_done)
        self.net.later(self._target().dispatch_open, self.me, self.sid, str(block_size), "iq",
                       reply)

    def send_data(self, seq: int, block: memoryview, on_done: AckCallback) -> None:
        seq_text, text = str(seq), encode_block(block)  # encoded now: the view is not kept
        if self.net.tamper is not None:
            seq_text, text = self.net.tamper(seq, text)
        self.net.wire.append((self.me, "data", seq))
        net = self.net
        net.inflight += 1
        net.max_inflight = max(net.max_inflight, net.inflight)

        def done(err: BaseException | None) -> None:
            net.inflight -= 1
            on_done(err)

        if net.message_mode:  # no per-chunk answer in message mode (XEP-0047 §4)
            net.later(done, None)
            net.later(self._target().dispatch_data, self.me, self.sid, seq_text, text, None)
        else:
            net.later(self._target().dispatch_data, self.me, self.sid, seq_text, text,
                      FakeReply(net, self.peer, done))

    def send_close(self, on_done: AckCallback) -> None:
        self.net.wire.append((self.me, "close", None))
        self.net.later(self._target().dispatch_close, self.me, self.sid,
                       FakeReply(self.net, self.peer, on_done))

    def release(self) -> None:
        self.released = True


def make_stream(net: FakeNet, me: str, peer: str, *, sid: str = "ibb-1", block_size: int = 4096,
                state: StreamState = StreamState.EXPECTING, **kw: Any) -> IbbStream:
    router = net.routers.get(me) or net.router(me)
    stream = IbbStream(FakePort(net, me, peer, sid), peer=peer, sid=sid, block_size=block_size,
                       state=state, on_release=router.remove, **kw)
    router.add(stream)
    return stream


async def open_pair(net: FakeNet, *, block_size: int = 4096, alice: dict[str, Any] | None = None,
                    bob: dict[str, Any] | None = None) -> tuple[IbbStream, IbbStream]:
    """Alice opens (XEP-0261: the initiator sends <open/>), Bob expected it."""
    b = make_stream(net, BOB, ALICE, block_size=block_size, **(bob or {}))
    a = make_stream(net, ALICE, BOB, block_size=block_size, state=StreamState.OPENING,
                    **(alice or {}))
    await a.open(5)
    await b.wait_open(5)
    assert a.state is b.state is StreamState.OPEN
    return a, b


async def read_all(stream: IbbStream, max_bytes: int = 65536) -> bytes:
    out = bytearray()
    while chunk := await stream.receive(max_bytes):
        out += chunk
    return bytes(out)


async def settle(turns: int = 2000) -> None:
    """Let every call_soon chain run to quiescence (deterministic: no clock involved)."""
    for _ in range(turns):
        await asyncio.sleep(0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_seqs(net: FakeNet, sender: str = ALICE) -> list[int | None]:
    return [seq for who, kind, seq in net.wire if who == sender and kind == "data"]


# =========================================================================== stream tests


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 1 << 20])
async def test_transfer_sizes_and_close(size: int) -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    assert isinstance(a, ByteStream)
    payload = os.urandom(size)

    async def sender() -> None:
        await a.send(payload)
        await a.aclose()

    task = asyncio.create_task(sender())
    got = await read_all(b)
    await task
    assert sha(got) == sha(payload)
    assert a.bytes_sent == b.bytes_received == size
    blocks = -(-size // 4096)
    assert data_seqs(net) == list(range(blocks))
    assert net.wire[-1] == (ALICE, "close", None) and net.errors == []
    assert len(net.routers[ALICE]) == len(net.routers[BOB]) == 0  # sids released


async def test_window_bounds_outstanding_iqs_and_is_used() -> None:
    net = FakeNet()
    a, b = await open_pair(net, alice={"window": 5})
    payload = os.urandom(100 * 4096)
    task = asyncio.create_task(a.send(payload))
    got = bytearray()
    while len(got) < len(payload):
        got += await b.receive(1 << 20)
    await task
    assert bytes(got) == payload
    assert net.max_inflight == 5


async def test_bidirectional() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    up, down = os.urandom(50_000), os.urandom(30_000)
    await asyncio.gather(a.send(up), b.send(down))
    got_b = bytearray()
    while len(got_b) < len(up):
        got_b += await b.receive(1 << 20)
    await b.aclose()  # bob closes: alice reads the rest, then EOF
    assert sha(bytes(got_b)) == sha(up)
    assert sha(await read_all(a)) == sha(down)
    assert data_seqs(net, BOB) == list(range(-(-30_000 // 4096)))
    with pytest.raises(StreamClosed):
        await a.send(b"more")


async def test_seq_wraps_from_65535_to_0() -> None:
    net = FakeNet()
    a, b = await open_pair(net, alice={"first_send_seq": 65530},
                           bob={"first_recv_count": 65530})
    payload = os.urandom(20 * 4096)
    task = asyncio.create_task(a.send(payload))
    got = bytearray()
    while len(got) < len(payload):
        got += await b.receive(1 << 20)
    await task
    assert sha(bytes(got)) == sha(payload)
    assert data_seqs(net) == [65530, 65531, 65532, 65533, 65534, 65535, *range(14)]


async def test_lenient_with_a_non_wrapping_sender() -> None:
    """docs/protocol.md §8.3: Conversations sends 65536, 65537...; we accept it."""
    net = FakeNet()
    a, b = await open_pair(net, alice={"first_send_seq": 65530, "wrap_seq": False},
                           bob={"first_recv_count": 65530})
    payload = os.urandom(20 * 4096 - 5)
    task = asyncio.create_task(a.send(payload))
    got = bytearray()
    while len(got) < len(payload):
        got += await b.receive(1 << 20)
    await task
    assert sha(bytes(got)) == sha(payload)
    assert data_seqs(net) == list(range(65530, 65550))
    assert net.errors == []


@pytest.mark.parametrize("bad_seq", [5, 1, 0], ids=["gap", "reused-previous", "reused-first"])
async def test_out_of_sequence_is_not_processed_and_closes(bad_seq: int) -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    net.tamper = lambda seq, text: (str(bad_seq) if seq == 2 else str(seq), text)
    payload = os.urandom(6 * 4096)
    with pytest.raises(StreamClosed) as sent:
        await a.send(payload)
        await settle()
        await a.send(b"x")
    assert getattr(sent.value, "condition", None) == "unexpected-request"
    assert (BOB, "unexpected-request") in net.errors
    # Bob delivers the two good blocks, nothing of the bad one, then the violation.
    assert await b.receive(1 << 20) == payload[:2 * 4096]
    with pytest.raises(IbbProtocolViolation) as got:
        await b.receive(1 << 20)
    assert got.value.condition == "unexpected-request"
    assert isinstance(got.value, RemoteProtocolError) and isinstance(got.value, TransportError)
    assert b.bytes_received == 2 * 4096
    assert (BOB, "close", None) in net.wire  # XEP-0047 §2.2: the receiver closes


async def test_bad_base64_is_bad_request_and_closes() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    net.tamper = lambda seq, text: (str(seq), "!!" + text[2:] if seq == 1 else text)
    payload = os.urandom(3 * 4096)
    with pytest.raises(StreamClosed):
        await a.send(payload)
        await settle()
        await a.send(b"x")
    assert await b.receive(1 << 20) == payload[:4096]
    with pytest.raises(IbbProtocolViolation) as got:
        await b.receive(1 << 20)
    assert got.value.condition == "bad-request"
    assert (BOB, "bad-request") in net.errors


async def test_chunk_over_block_size_is_bad_request() -> None:
    net = FakeNet()
    a, b = await open_pair(net, block_size=1024)
    net.tamper = lambda seq, text: (str(seq), encode_block(bytes(1025)) if seq == 0 else text)
    with pytest.raises(StreamClosed):
        await a.send(b"\x01" * 1024)
        await settle()
        await a.send(b"x")
    with pytest.raises(IbbProtocolViolation) as got:
        await b.receive(1 << 20)
    assert got.value.condition == "bad-request"
    assert b.bytes_received == 0 and b.buffered == 0


async def test_third_party_data_gets_item_not_found_and_changes_nothing() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    carol = FakePort(net, CAROL, BOB, "ibb-1")  # same sid, wrong sender
    net.router(CAROL)
    results: list[BaseException | None] = []
    carol.send_data(0, memoryview(b"evil bytes"), results.append)
    stranger = FakePort(net, ALICE, BOB, "no-such-sid")  # right sender, unknown sid
    stranger.send_data(0, memoryview(b"lost"), results.append)
    await settle()
    assert [getattr(r, "condition", None) for r in results] == ["item-not-found"] * 2
    assert b.bytes_received == 0 and b.state is StreamState.OPEN
    payload = os.urandom(10_000)  # alice's seq 0 is still the expected one
    await a.send(payload)
    await a.aclose()
    assert sha(await read_all(b)) == sha(payload)


async def test_open_rules() -> None:
    net = FakeNet()
    net.router(ALICE)
    b = make_stream(net, BOB, ALICE, sid="ibb-1", block_size=4096)
    # nobody expects this sid → not-acceptable
    unexpected = make_stream(net, ALICE, BOB, sid="ibb-other", state=StreamState.OPENING)
    with pytest.raises(IbbError) as info:
        await unexpected.open(5)
    assert info.value.condition == "not-acceptable"
    # the right sid from the wrong JID → not-acceptable, and Bob still waits for Alice
    net.router(CAROL)
    carol = make_stream(net, CAROL, BOB, sid="ibb-1", state=StreamState.OPENING)
    with pytest.raises(IbbError) as info:
        await carol.open(5)
    assert info.value.condition == "not-acceptable"
    # data before <open/> → item-not-found, nothing buffered
    early: list[BaseException | None] = []
    FakePort(net, ALICE, BOB, "ibb-1").send_data(0, memoryview(b"early"), early.append)
    await settle()
    assert getattr(early[0], "condition", None) == "item-not-found"
    # a bigger block size than negotiated → resource-constraint (XEP-0261 §2.2)
    big = make_stream(net, ALICE, BOB, sid="ibb-1", block_size=8192, state=StreamState.OPENING)
    with pytest.raises(IbbError) as info:
        await big.open(5)
    assert info.value.condition == "resource-constraint"
    assert b.state is StreamState.EXPECTING and b.bytes_received == 0
    # a smaller one is fine and becomes the chunk limit
    a = make_stream(net, ALICE, BOB, sid="ibb-1", block_size=1024, state=StreamState.OPENING)
    await a.open(5)
    await b.wait_open(1)
    assert b.block_size == 1024
    # a second <open/> on a live sid is refused
    again = FakePort(net, ALICE, BOB, "ibb-1")
    answers: list[BaseException | None] = []
    again.send_open(1024, answers.append)
    await settle()
    assert getattr(answers[0], "condition", None) == "not-acceptable"
    net.wire.clear()
    payload = os.urandom(5000)
    await a.send(payload)
    await a.aclose()
    assert sha(await read_all(b)) == sha(payload)
    assert data_seqs(net) == [0, 1, 2, 3, 4]


async def test_wait_open_times_out() -> None:
    net = FakeNet()
    net.router(ALICE)
    b = make_stream(net, BOB, ALICE)
    with pytest.raises(IbbError, match="did not open"):
        await b.wait_open(0.01)
    await b.aclose()
    assert len(net.routers[BOB]) == 0


async def test_flow_control_stops_acking_when_the_reader_lags() -> None:
    net = FakeNet()
    recv_buffer = 64 * 1024
    a, b = await open_pair(net, alice={"window": 8}, bob={"recv_buffer": recv_buffer})
    payload = os.urandom(2 << 20)
    task = asyncio.create_task(a.send(payload))
    await settle()
    # Nobody reads: the sender is stuck with a full window, memory is bounded.
    assert not task.done()
    assert a.inflight == 8
    assert b.buffered <= recv_buffer + 8 * 4096
    assert a.bytes_sent <= recv_buffer + 8 * 4096
    stalled_at = a.bytes_sent
    await settle()
    assert a.bytes_sent == stalled_at
    got = bytearray()
    while len(got) < len(payload):
        got += await b.receive(10_000)
        assert b.buffered <= recv_buffer + 8 * 4096
    await task
    assert sha(bytes(got)) == sha(payload)


async def test_sender_ignoring_flow_control_is_cut_off() -> None:
    """Message mode has no acks: past recv_limit the receiver gives up instead of growing."""
    net = FakeNet()
    net.message_mode = True
    a, b = await open_pair(net, bob={"recv_buffer": 16 * 1024, "recv_limit": 64 * 1024})
    payload = os.urandom(1 << 20)
    with pytest.raises(StreamClosed):
        await a.send(payload)
        await settle()
        await a.send(b"x")  # bob's <close/> reached alice
    assert b.buffered <= 64 * 1024 + 4096
    with pytest.raises(IbbError) as info:
        while True:
            await b.receive(1 << 20)
    assert info.value.condition == "resource-constraint"


async def test_unanswered_data_fails_the_sender() -> None:
    net = FakeNet()
    a, b = await open_pair(net, alice={"ack_timeout": 0.05, "window": 2})
    net.drop_acks = True
    with pytest.raises(IbbError, match="did not acknowledge"):
        await a.send(os.urandom(10 * 4096))
    assert a.state is StreamState.FAILED
    assert (ALICE, "close", None) in net.wire  # XEP-0047: the sender closes after a failure
    assert await b.receive(1 << 20) != b""  # bob got the data that was sent


async def test_error_answer_to_data_fails_send_with_condition() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    net.routers[BOB].remove(b)  # bob forgot the sid without a <close/>
    await a.send(b"late")  # returns once written: the window lets it go unanswered
    with pytest.raises(IbbError) as info:
        await a.drain()
    assert info.value.condition == "item-not-found"
    assert a.state is StreamState.FAILED
    with pytest.raises(IbbError):
        await a.send(b"more")
    assert b.bytes_received == 0


async def test_drain_waits_for_every_answer() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    acks_before = net.acks  # the <open/> result
    payload = os.urandom(5 * 4096)
    await a.send(payload)
    assert a.inflight == 5  # nothing answered yet: acks need loop turns
    await a.drain()
    assert a.inflight == 0 and net.acks - acks_before == 5
    assert await b.receive(1 << 20) == payload


async def test_aclose_is_idempotent_and_releases() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    await a.send(b"hello")
    await a.aclose()
    await a.aclose()
    assert await read_all(b) == b"hello"
    await b.aclose()
    assert a.state is b.state is StreamState.CLOSED
    assert len(net.routers[ALICE]) == len(net.routers[BOB]) == 0
    assert [kind for who, kind, _ in net.wire].count("close") == 1  # bob saw the close
    with pytest.raises(StreamClosed):
        await a.receive(10)


async def test_router_rejects_duplicate_registration() -> None:
    net = FakeNet()
    make_stream(net, BOB, ALICE, sid="dup")
    with pytest.raises(ValueError):
        make_stream(net, BOB, ALICE, sid="dup")
    make_stream(net, BOB, CAROL, sid="dup")  # same sid with another peer is another stream
    assert len(net.routers[BOB]) == 2


async def test_data_right_behind_the_open_result_is_accepted() -> None:
    """The peer may send data in the same read as its <open/> result: no item-not-found."""
    net = FakeNet()
    a_router, net_b = net.router(ALICE), net.router(BOB)
    replies: list[str] = []

    class Reply:
        def ack(self) -> None:
            replies.append("result")

        def reject(self, condition: str, error_type: str = "cancel", text: str = "") -> None:
            replies.append(condition)

    class SameTickPort(FakePort):
        def send_open(self, block_size: int, on_done: AckCallback) -> None:
            def result_then_data() -> None:  # one "read" from the server
                on_done(None)
                a_router.dispatch_data(BOB, "ibb-1", "0", encode_block(b"hi"), Reply())
            net.later(result_then_data)

    a = IbbStream(SameTickPort(net, ALICE, BOB, "ibb-1"), peer=BOB, sid="ibb-1",
                  block_size=4096, state=StreamState.OPENING, on_release=a_router.remove)
    a_router.add(a)
    await a.open(5)
    assert replies == ["result"]
    assert await a.receive(10) == b"hi"
    assert len(net_b) == 0


async def test_drain_after_the_contact_closed_with_data_unanswered() -> None:
    net = FakeNet()
    a, b = await open_pair(net)
    net.drop_acks = True  # bob takes the data but his answers never come back
    await a.send(os.urandom(3 * 4096))
    await settle()
    net.drop_acks = False
    await b.aclose()  # bob's <close/> reaches alice with 3 blocks unanswered
    with pytest.raises(StreamClosed, match="3 data IQs unanswered"):
        await a.drain()
    assert await a.receive(10) == b""
