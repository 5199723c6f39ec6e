"""`jinglefs receive` and an offer of several files (one action of the sender,
docs/protocol.md §3.5): one question, `--count` counts offers, the JSON lists every file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jinglefs import cli
from jinglefs.cli import terminal
from jinglefs.cli.output import OFFER_LINES, offer_line, offer_prompt_lines, offer_question
from jinglefs.events import FileInfo
from jinglefs.text import format_size
from tests.fakes import FakeClient, FakeOffer, fake_connect
from tests.test_cli import isolated  # noqa: F401  (autouse: config, account, keyring)

BOB = "bob@example.org"
FOLDER = [FileInfo("trip/a.txt", 1_000), FileInfo("trip/b.jpg", 300_000),
          FileInfo("trip/day2/c.mov", 5_000_000)]
TOTAL = sum(f.size for f in FOLDER)


def folder_offer(**kw: Any) -> FakeOffer:
    return FakeOffer(f"{BOB}/phone", FOLDER, contents=[b"a", b"b", b"c"], **kw)


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_count_counts_offers_and_the_json_offer_lists_every_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "in"
    first, second = folder_offer(), folder_offer()
    client = FakeClient(offers=[first, second])
    rc = cli.main(["receive", "--json", "--accept-from", BOB, "--output", str(inbox),
                   "--count", "1"], connect=fake_connect(client))
    assert rc == 0
    assert first.accepted_into == inbox and second.accepted_into is None
    events = json_lines(capsys.readouterr().out)
    [offer] = [e for e in events if e["event"] == "offer"]
    assert offer["files"] == [{"name": f.name, "size": f.size,
                               "media_type": "application/octet-stream"} for f in FOLDER]
    assert offer["count"] == 3 and offer["total_size"] == TOTAL
    assert len([e for e in events if e["event"] == "completed"]) == 3
    assert events[-1]["event"] == "summary" and events[-1]["received"] == 3
    assert (inbox / "trip" / "day2" / "c.mov").read_bytes() == b"c"  # folders kept


def test_one_question_for_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "in"
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: True)
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "y\n"

    monkeypatch.setattr(terminal, "read_answer", answer)
    offer = folder_offer()
    client = FakeClient(offers=[offer], end_offers=True)
    rc = cli.main(["receive", "--output", str(inbox)], connect=fake_connect(client))
    assert rc == 0
    assert prompts == [f"Accept all 3 files ({format_size(TOTAL)}) into {inbox}? [y/N] "]
    assert offer.accepted_into == inbox and len(offer.transfers) == 3
    err = capsys.readouterr().err
    assert f"Offer from {BOB}/phone: 3 files, {format_size(TOTAL)}" in err
    for f in FOLDER:
        assert f"  {f.name}  {format_size(f.size)}" in err


def test_declining_at_the_prompt_declines_the_whole_offer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "in"
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: True)
    monkeypatch.setattr(terminal, "read_answer", lambda prompt: "n\n")
    offer = folder_offer()
    client = FakeClient(offers=[offer], end_offers=True)
    assert cli.main(["receive", "--output", str(inbox)], connect=fake_connect(client)) == 0
    assert offer.declined and offer.transfers == [] and list(inbox.iterdir()) == []


def test_long_offers_are_summed_up() -> None:
    many = [FileInfo(f"pics/{i:03}.jpg", 1000 + i) for i in range(OFFER_LINES + 7)]
    text = offer_prompt_lines(f"{BOB}/x", many, from_contact=False)
    lines = text.splitlines()
    assert lines[0] == (f"Offer from {BOB}/x  (NOT in your contacts): {len(many)} files, "
                        f"{format_size(sum(f.size for f in many))}")
    assert len(lines) == 1 + OFFER_LINES + 1
    rest = many[OFFER_LINES:]
    assert lines[-1] == f"  … and 7 more ({format_size(sum(f.size for f in rest))})"
    assert offer_question(many[:1], "/in") == \
        f"Accept the file ({format_size(many[0].size)}) into /in? [y/N] "
    line = offer_line("o1", f"{BOB}/x", many)
    assert line.startswith(f"Offer o1 from {BOB}/x: {len(many)} files, ")
    assert line.endswith(f", … and {len(many) - 5} more")
