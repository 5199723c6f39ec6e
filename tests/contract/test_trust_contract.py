"""The fake façade's OMEMO trust (tests/fakes.py FakeOmemo) tells what the real client's
(jinglefs.omemo through jinglefs.client) tells.

One scenario, played twice with the same steps: on two ``FakeClient`` s, and on two real
clients of fresh accounts on the loopback Prosody with PEP (a fresh account per run: PEP
keeps the device lists of earlier runs).  alice looks at bob's devices, fails to verify
with a fingerprint that is not his and with text that is not a fingerprint, verifies his
device (pasted as Conversations copies it), bob adds a device (a new OMEMO device: on the
real server a second client with its own key store), alice sees it as new since she
verified him, verifies it too.  A client with OMEMO off says so.  Each run is reduced to
a :class:`TrustTrace` and compared with ONE expected trace, so the app's tests, written
against the fake, may trust it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from jinglefs.api import ClientLike, EnvelopeError, PeerDevice
from jinglefs.jid import bare_jid
from tests.fakes import FakeClient, FakeOmemo, fake_fingerprint

#: 8 groups of 8 lowercase hex digits, as Conversations and Dino show a fingerprint
GROUPED = re.compile(r"[0-9a-f]{8}( [0-9a-f]{8}){7}")

Roles = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TrustTrace:
    """What alice's client showed; bob's devices named by role ("bob", "phone")."""

    fingerprints_grouped: bool
    #: each listed fingerprint is that device's own (what bob's app shows)
    fingerprints_are_theirs: bool
    before: Roles
    #: (exception type, it says nothing was marked verified) for a fingerprint not his
    wrong: tuple[str, bool]
    #: (exception type, it says what a fingerprint looks like) for "abc"
    not_a_fingerprint: tuple[str, bool]
    after_refusals: Roles
    verified: tuple[str, str]
    with_new_device: Roles
    reported_new: tuple[str, ...]
    after_verifying_it: Roles
    reported_after: tuple[str, ...]
    #: a client with OMEMO off: (own_fingerprint(), what devices_of raised)
    omemo_off: tuple[str | None, str]


EXPECTED = TrustTrace(
    fingerprints_grouped=True,
    fingerprints_are_theirs=True,
    before=(("bob", "blind"),),
    wrong=("EnvelopeError", True),
    not_a_fingerprint=("EnvelopeError", True),
    after_refusals=(("bob", "blind"),),
    verified=("bob", "verified"),
    with_new_device=(("bob", "verified"), ("phone", "new-after-verified")),
    reported_new=("phone",),
    after_verifying_it=(("bob", "verified"), ("phone", "verified")),
    reported_after=(),
    omemo_off=(None, "EnvelopeError"),
)


@dataclass
class TrustWorld:
    alice: ClientLike
    bob: ClientLike
    #: bob adds a device; returns the client of that device
    add_bob_device: Callable[[], Awaitable[ClientLike]]
    #: a client of a third account with OMEMO off
    without_omemo: ClientLike


async def play(world: TrustWorld) -> TrustTrace:
    alice, bob = world.alice, world.bob
    him = bare_jid(bob.jid)
    alice_fp, bob_fp = await alice.own_fingerprint(), await bob.own_fingerprint()
    assert alice_fp is not None and bob_fp is not None
    role = {bob_fp: "bob"}

    def roles(devices: list[PeerDevice]) -> Roles:
        return tuple(sorted((role.get(d.fingerprint, "?"), d.trust) for d in devices))

    before = await alice.devices_of(him)
    listed = [d.fingerprint for d in before]
    try:
        await alice.verify_device(him, fake_fingerprint("not bob"))
        wrong = ("", False)
    except EnvelopeError as e:
        wrong = (type(e).__name__, "nothing was marked verified" in str(e))
    try:
        await alice.verify_device(him, "abc")
        not_fp = ("", False)
    except EnvelopeError as e:
        not_fp = (type(e).__name__, "not an OMEMO fingerprint" in str(e))
    after_refusals = await alice.devices_of(him)
    # as Conversations copies it: one block, upper case, with the 05 key-type prefix
    done = await alice.verify_device(him, "05" + bob_fp.replace(" ", "").upper())

    phone = await world.add_bob_device()
    phone_fp = await phone.own_fingerprint()
    assert phone_fp is not None
    role[phone_fp] = "phone"
    with_phone = await alice.devices_of(him)
    listed += [d.fingerprint for d in with_phone]
    reported = tuple(role.get(d.fingerprint, "?") for d in alice.new_devices_of_verified(him))
    await alice.verify_device(him, phone_fp)
    after = await alice.devices_of(him)
    reported_after = tuple(role.get(d.fingerprint, "?")
                           for d in alice.new_devices_of_verified(him))

    off = world.without_omemo
    try:
        await off.devices_of(him)
        off_raised = ""
    except EnvelopeError as e:
        off_raised = type(e).__name__
    return TrustTrace(
        fingerprints_grouped=all(GROUPED.fullmatch(fp) for fp in (alice_fp, bob_fp, phone_fp)),
        fingerprints_are_theirs=set(listed) <= {bob_fp, phone_fp} and phone_fp in listed,
        before=roles(before), wrong=wrong, not_a_fingerprint=not_fp,
        after_refusals=roles(after_refusals), verified=(role.get(done.fingerprint, "?"),
                                                        done.trust),
        with_new_device=roles(with_phone), reported_new=reported,
        after_verifying_it=roles(after), reported_after=reported_after,
        omemo_off=(await off.own_fingerprint(), off_raised))


# ------------------------------------------------------------------------- the worlds

def fake_world() -> TrustWorld:
    alice = FakeClient("alice@example.org/a")
    bob = FakeClient("bob@example.org/b")
    assert alice.omemo is not None and bob.omemo is not None
    alice.omemo.publish("bob@example.org", 1001, bob.omemo.fingerprint)  # his device list

    async def add_bob_device() -> ClientLike:
        phone = FakeClient("bob@example.org/phone")
        phone.omemo = FakeOmemo(phone.jid)
        assert alice.omemo is not None
        alice.omemo.publish("bob@example.org", 1002, phone.omemo.fingerprint)
        return phone

    return TrustWorld(alice, bob, add_bob_device, FakeClient("carol@example.org/c",
                                                             omemo=False))


@pytest.fixture(params=[pytest.param("fake", id="fake-trust"),
                        pytest.param("real", id="real-trust", marks=pytest.mark.e2e)])
async def world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                tmp_path: Path) -> AsyncIterator[TrustWorld]:
    if request.param == "fake":
        yield fake_world()
        return
    from jinglefs.omemo.storage import DATA_DIR_ENV
    from tests.e2e.conftest import login, settings

    prosody = request.getfixturevalue("prosody")
    tag = secrets.token_hex(3)
    alice_user, bob_user, carol_user = (f"{n}-{tag}" for n in ("alice", "bob", "carol"))
    for user in (alice_user, bob_user, carol_user):
        prosody.add_account(user)
    clients: list[ClientLike] = []

    async def client(user: str, resource: str, data: str, **kw: object) -> ClientLike:
        # one OMEMO store per device: each its own data folder (jinglefs.omemo.storage)
        monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / data))
        made = await login(prosody, user, resource, settings(**kw))
        clients.append(made)
        return made

    try:
        alice = await client(alice_user, "a", "alice")
        bob = await client(bob_user, "b", "bob")
        off = await client(carol_user, "c", "carol", omemo=False)

        async def add_bob_device() -> ClientLike:
            return await client(bob_user, "phone", "bob-phone")

        yield TrustWorld(alice, bob, add_bob_device, off)
    finally:
        for c in clients:
            await c.aclose()


async def test_fake_and_real_show_the_same_trust(world: TrustWorld) -> None:
    assert await play(world) == EXPECTED

