"""The two tables everything else reads: error kinds (jinglefs.errors.ERROR_KINDS) and
transfer states (jinglefs.events.TRANSITIONS).  The README's exit-code table is the
contract for the exit codes, so it is parsed here, not copied."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from jinglefs import errors
from jinglefs.events import (
    FINAL_STATES,
    LAST_BYTE,
    TRANSITIONS,
    Accepted,
    Completed,
    Direction,
    Failed,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    TransferEvent,
    TransferState,
    TransportSelected,
    Verified,
    next_state,
    state_after,
    state_input,
)
from jinglefs.handles import TransferHandle, failed_event
from jinglefs.jingle.model import Reason

README = Path(__file__).resolve().parent.parent / "README.md"

#: Which README row (how its "meaning" cell begins) each kind's exit code must be.
README_MEANING = {
    "failed": "other failure",
    "usage": "usage or configuration error",
    "connect": "cannot connect to the xmpp server",
    "auth": "the server refused the account or password",
    "no-recipient": "the recipient has no online device",
    "transport": "no transport could connect",
    "no-transport": "no transport could connect",
    "connection-lost": "no transport could connect",
    "negotiation": "the transfer failed",
    "timeout": "the transfer failed",
    "transfer-failed": "the transfer failed",
    "size-mismatch": "the transfer failed",
    "storage": "the transfer failed",
    "peer-gone": "the transfer failed",
    "hash-mismatch": "checksum mismatch",
    "cancelled": "cancelled",
    "declined": "declined by the recipient",
    "unanswered": "unanswered",
    "interrupted": "interrupted",
    "protocol-error": "other failure",
    "local-protocol": "other failure",
    "protocol": "other failure",
    "decrypt-failed": "an encrypted file failed to decrypt",
    "encryption-required": "encryption required",
}


def readme_exit_codes() -> dict[int, str]:
    """code -> meaning, from the table under "Exit codes" in README.md."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("Exit codes"):]
    table = section[: section.index("\n\n", section.index("| code |"))]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", table, flags=re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def error_classes() -> list[type[BaseException]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == errors.__name__]


# ----------------------------------------------------------------------- error kinds

def test_the_readme_table_is_parsed() -> None:
    codes = readme_exit_codes()
    assert sorted(codes) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 130]
    assert "checksum mismatch" in codes[8] and "declined" in codes[10]


def test_every_exception_class_has_its_own_row() -> None:
    classes = error_classes()
    assert errors.ChecksumMismatch in classes and len(classes) >= 20
    rows = {row.exception for row in errors.ERROR_KINDS}
    assert [c.__name__ for c in classes if c not in rows] == []
    for cls in classes:
        assert errors.row_for(cls).exception is cls


def test_kinds_are_unique_and_cover_the_expectations_here() -> None:
    kinds = [row.kind for row in errors.ERROR_KINDS]
    assert len(kinds) == len(set(kinds))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", k) for k in kinds)
    assert sorted(kinds) == sorted(README_MEANING)
    for row in errors.ERROR_KINDS:
        assert errors.row_by_kind(row.kind) is row
        assert row.text.endswith(".") and 10 < len(row.text) < 100  # one short sentence


@pytest.mark.parametrize("row", errors.ERROR_KINDS, ids=lambda r: r.kind)
def test_exit_code_is_the_readme_row(row: errors.ErrorKind) -> None:
    codes = readme_exit_codes()
    [code] = [c for c, meaning in codes.items()
              if meaning.lower().startswith(README_MEANING[row.kind])]
    assert row.exit_code == code
    assert errors.exit_code_for(row.exception) == code


def test_exit_constants_are_the_readme_numbers() -> None:
    codes = readme_exit_codes()
    constants = {name: value for name, value in vars(errors).items()
                 if name.startswith("EXIT_") and isinstance(value, int)}
    assert sorted(constants.values()) == sorted(codes)
    assert "every file" in codes[constants["EXIT_OK"]]
    assert "checksum" in codes[constants["EXIT_HASH_MISMATCH"]]
    assert "declined" in codes[constants["EXIT_DECLINED"]]
    assert "interrupted" in codes[constants["EXIT_INTERRUPTED"]]
    # every failure code of the README is some kind's code
    assert {row.exit_code for row in errors.ERROR_KINDS} == set(codes) - {errors.EXIT_OK}


def test_lookups_use_the_nearest_row() -> None:
    assert errors.kind_of(errors.CandidatesFailed("x")) == "no-transport"
    assert errors.exit_code_for(errors.CandidatesFailed("x")) == 6
    assert errors.kind_of(errors.Declined()) == "declined"
    assert errors.exit_code_for(errors.Declined()) == 10
    assert errors.exit_code_for(errors.ChecksumMismatch()) == 8

    class Custom(errors.StreamClosed):
        pass

    assert errors.kind_of(Custom()) == "connection-lost" and Custom().exit_code == 6
    assert errors.kind_of(ValueError("bug")) == "failed"
    assert errors.exit_code_for(ValueError("bug")) == 1
    assert errors.exit_code_for(KeyboardInterrupt()) == 130
    assert errors.kind_of(KeyboardInterrupt) == "interrupted"


def test_messages_come_from_the_table() -> None:
    assert errors.Declined().user_message == "The recipient declined the file."
    assert errors.ChecksumMismatch("sha-256").user_message == (
        "The received file does not match the sender's checksum; it was not saved. (sha-256)")
    assert errors.message_for(errors.PeerGone()) == errors.row_for(errors.PeerGone).text
    assert errors.message_for(ValueError("boom")) == "boom"
    assert errors.message_for(RuntimeError()) == "RuntimeError"


@pytest.mark.parametrize("row", errors.ERROR_KINDS, ids=lambda r: r.kind)
def test_reason_column_is_a_jingle_condition(row: errors.ErrorKind) -> None:
    # XEP-0166 §7.4: the condition a session is ended with; never <success/>.
    assert Reason(row.reason) is not Reason.SUCCESS


def test_failed_event_carries_kind_and_exit_code() -> None:
    ev = failed_event("t1", errors.Cancelled("cancelled here"))
    assert (ev.error, ev.exit_code) == ("cancelled", 9)
    assert ev.reason == "The transfer was cancelled. (cancelled here)"
    assert failed_event("t2", errors.StorageError("disk full")).to_json()["error"] == "storage"


# --------------------------------------------------------------------- transfer states

S = TransferState
FILE = FileInfo("f.bin", 100)


def test_every_state_has_a_row_and_final_states_take_no_input() -> None:
    assert set(TRANSITIONS) == set(TransferState)
    assert FINAL_STATES == {S.COMPLETED, S.FAILED}
    for state in FINAL_STATES:
        assert TRANSITIONS[state] == {} and state.finished
    for state in set(TransferState) - FINAL_STATES:
        assert not state.finished
        assert TRANSITIONS[state]["completed"] is S.COMPLETED
        assert TRANSITIONS[state]["failed"] is S.FAILED


def test_inputs_are_event_names_and_the_last_byte() -> None:
    inputs = {i for row in TRANSITIONS.values() for i in row}
    names = {"accepted", "transport", "progress", "verified", "completed", "failed"}
    assert inputs == names | {LAST_BYTE}
    assert state_input(Progress("t", done=99, total=100)) == "progress"
    assert state_input(Progress("t", done=100, total=100)) == LAST_BYTE
    assert state_input(Progress("t", done=0, total=0)) == "progress"  # empty file


def test_a_whole_transfer_walks_the_states_in_order() -> None:
    events: list[TransferEvent] = [
        Offered("t", peer="bob@example.org/x", direction=Direction.RECEIVE, file=FILE),
        Accepted("t"),
        TransportSelected("t", path=PathKind.IBB),
        Progress("t", done=50, total=100),
        Progress("t", done=100, total=100),
        Verified("t", algo="sha-256", digest=b"\x01"),
        Completed("t", path="/tmp/f.bin", size=100, verified=True),
    ]
    seen = []
    state = S.OFFERED
    for ev in events:
        state = next_state(state, ev)
        seen.append(state)
    assert seen == [S.OFFERED, S.CONNECTING, S.TRANSFERRING, S.TRANSFERRING, S.VERIFYING,
                    S.VERIFYING, S.COMPLETED]
    assert state_after(events) is S.COMPLETED


def test_a_final_state_absorbs_later_events() -> None:
    failed = Failed("t", reason="no", error="declined", exit_code=10)
    assert state_after([failed, Accepted("t"), Completed("t", path="", size=0)]) is S.FAILED
    assert next_state(S.VERIFYING, Progress("t", done=1, total=100)) is S.VERIFYING
    assert next_state(S.TRANSFERRING, TransportSelected("t", path=PathKind.IBB)) \
        is S.TRANSFERRING


async def test_the_handle_follows_the_table() -> None:
    async def no_cancel() -> None:
        return None

    handle = TransferHandle("t", "bob@example.org/x", Direction.SEND, FILE, cancel=no_cancel)
    states = [handle.state]
    for ev in (Accepted("t"), TransportSelected("t", path=PathKind.S5B_DIRECT),
               Progress("t", done=100, total=100)):
        handle.emit(ev)
        states.append(handle.state)
    handle.fail(errors.PeerGone("the contact went offline"))
    states.append(handle.state)
    assert states == [S.OFFERED, S.CONNECTING, S.TRANSFERRING, S.VERIFYING, S.FAILED]
    [*_, last] = [e async for e in handle.events()]
    assert isinstance(last, Failed) and (last.error, last.exit_code) == ("peer-gone", 7)
    with pytest.raises(errors.PeerGone):
        await handle.wait()
