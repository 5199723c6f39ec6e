"""What a command prints: human progress on stderr, NDJSON events on stdout.

:class:`HumanView` draws a one-line bar (percent, speed, ETA and the path label) when
stderr is a terminal, and occasional plain lines otherwise.  :class:`JsonView` writes one
JSON object per line and throttles ``progress`` events.  Both take an injectable clock so
throttling is tested without sleeping.  :class:`Output` is the pair a command writes to.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ..api import TransferLike
from ..errors import JingleFSError, UsageError, exit_code_for
from ..events import (
    JSON_SCHEMA_VERSION,
    Accepted,
    Completed,
    Failed,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    TransferEvent,
    TransportSelected,
    Verification,
    Verified,
)
from ..login import KeyringUnavailable
from ..text import format_size, safe_text

__all__ = [
    "format_rate",
    "format_eta",
    "parse_size",
    "use_color",
    "error_text",
    "offer_line",
    "offer_prompt_lines",
    "offer_question",
    "HumanView",
    "JsonView",
    "Output",
]

Clock = Callable[[], float]

#: Seconds between two ``progress`` lines in --json mode (per transfer).
JSON_PROGRESS_INTERVAL = 0.5
#: Seconds between two redraws of the terminal bar.
BAR_INTERVAL = 0.1
#: Plain (non-TTY) progress lines are printed at these fractions.
PLAIN_STEPS = (0.25, 0.5, 0.75)

#: Files an offer prompt lists one per line; the rest are summed up in one line.
OFFER_LINES = 20
#: Files the one-line offer notice names.
OFFER_NAMES = 5


def _files_text(files: Sequence[FileInfo]) -> str:
    n = len(files)
    return f"{n} file{'s' if n != 1 else ''}, {format_size(sum(f.size for f in files))}"


def offer_line(offer_id: str, peer: str, files: Sequence[FileInfo]) -> str:
    """The status line for an incoming offer (one action of the sender, any number of
    files): ``Offer o1 from bob@…: 6 files, 12.0 MiB: a (1 KiB), b (2 KiB), … and 1 more``."""
    named = ", ".join(f"{safe_text(f.name)} ({format_size(f.size)})"
                      for f in files[:OFFER_NAMES])
    more = f", … and {len(files) - OFFER_NAMES} more" if len(files) > OFFER_NAMES else ""
    return f"Offer {offer_id} from {safe_text(peer)}: {_files_text(files)}: {named}{more}"


def offer_prompt_lines(peer: str, files: Sequence[FileInfo], from_contact: bool) -> str:
    """What the receive prompt shows before its one question: who, every file (the first
    :data:`OFFER_LINES`, then a count) and the total size."""
    lines = [f"Offer from {safe_text(peer)}"
             + ("" if from_contact else "  (NOT in your contacts)")
             + f": {_files_text(files)}"]
    lines += [f"  {safe_text(f.name)}  {format_size(f.size)}" for f in files[:OFFER_LINES]]
    rest = files[OFFER_LINES:]
    if rest:
        lines.append(f"  … and {len(rest)} more ({format_size(sum(f.size for f in rest))})")
    return "\n".join(lines)


def offer_question(files: Sequence[FileInfo], dest: str) -> str:
    """The one y/N question for a whole offer: accept every file, or decline them all."""
    n = len(files)
    what = "the file" if n == 1 else f"all {n} files"
    total = format_size(sum(f.size for f in files))
    return f"Accept {what} ({total}) into {safe_text(dest, 200)}? [y/N] "


def format_rate(bps: float) -> str:
    return format_size(bps) + "/s"


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or seconds != seconds or seconds > 360000:
        return "--:--"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``"10M"`` -> 10485760.  Suffixes K, M, G, T (powers of 1024), optional ``B``/``iB``.

    Raises ValueError for anything else (including negative numbers).
    """
    t = text.strip().upper()
    for tail in ("IB", "B"):
        if t.endswith(tail) and len(t) > len(tail):
            t = t[: -len(tail)]
            break
    suffix = t[-1:] if t[-1:] in ("K", "M", "G", "T") else ""
    number = t[: len(t) - len(suffix)].strip()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use e.g. 500K, 10M, 2G)") from None
    if value < 0 or value != value or value == float("inf"):
        raise ValueError(f"not a size: {text!r}")
    return int(value * _SUFFIXES[suffix])


def use_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class _Line:
    """What the human view remembers about one transfer."""

    name: str
    total: int = 0
    done: int = 0
    rate: float = 0.0
    eta: float | None = None
    path: PathKind | None = None
    #: "encrypted (OMEMO)", "encrypted (DTLS)", "not encrypted" (events.Protection)
    protection: str = ""
    verified_algo: str | None = None
    next_plain_step: int = 0


class HumanView:
    """Human-readable progress for one command, written to ``stream`` (stderr)."""

    def __init__(self, stream: TextIO, *, quiet: bool = False, tty: bool | None = None,
                 color: bool | None = None, clock: Clock = time.monotonic,
                 width: int | None = None) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = _isatty(stream) if tty is None else tty
        self.color = use_color(stream) if color is None else color
        self.clock = clock
        self.width = width
        self._lines: dict[str, _Line] = {}
        self._bar_shown = False
        self._last_draw = float("-inf")

    # ----------------------------------------------------------- plain messages

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self._bar_shown = False

    def info(self, text: str) -> None:
        """A status line (hidden by --quiet)."""
        if not self.quiet:
            self._clear_bar()
            self.stream.write(text + "\n")
            self.stream.flush()

    def always(self, text: str) -> None:
        """A line shown even with --quiet (final results, errors)."""
        self._clear_bar()
        self.stream.write(text + "\n")
        self.stream.flush()

    def ok(self, text: str) -> None:
        self.always(self._paint("✓", "32") + " " + text)

    def error(self, text: str) -> None:
        self.always(self._paint("✗", "31") + " " + text)

    # ----------------------------------------------------------- transfer events

    def track(self, transfer_id: str, name: str, total: int) -> None:
        self._lines.setdefault(transfer_id, _Line(name=safe_text(name), total=total))

    def event(self, ev: TransferEvent, *, peer: str = "") -> None:
        line = self._lines.setdefault(ev.transfer_id, _Line(name=ev.transfer_id))
        if isinstance(ev, Offered):
            line.name = safe_text(ev.file.name)
            line.total = ev.file.size
        elif isinstance(ev, Accepted) and ev.offset > 0:
            # XEP-0234 §6.4 ranged transfer: the bytes before the offset are already there
            line.done = ev.offset
            pct = ev.offset * 100 // line.total if line.total > 0 else 0
            self.info(f"{line.name}: resumed at {pct}% ({format_size(ev.offset)} "
                      "already there)")
        elif isinstance(ev, TransportSelected):
            line.path = ev.path
            line.protection = ev.protection.value
            detail = f" [{safe_text(ev.detail)}]" if ev.detail else ""
            self.info(f"{line.name}: via {ev.path.label}, {line.protection}{detail}")
        elif isinstance(ev, Progress):
            line.done, line.total, line.rate, line.eta = ev.done, ev.total, ev.rate, ev.eta
            self._progress(line)
        elif isinstance(ev, Verified):
            line.verified_algo = ev.algo

    def _progress(self, line: _Line) -> None:
        if self.quiet:
            return
        fraction = line.done / line.total if line.total > 0 else 1.0
        if self.tty:
            now = self.clock()
            if now - self._last_draw < BAR_INTERVAL and fraction < 1.0:
                return
            self._last_draw = now
            self.stream.write("\r\x1b[K" + self.bar_text(line))
            self.stream.flush()
            self._bar_shown = True
            return
        step = line.next_plain_step
        while step < len(PLAIN_STEPS) and fraction >= PLAIN_STEPS[step]:
            step += 1
        if step > line.next_plain_step:
            line.next_plain_step = step
            if fraction < 1.0:
                self.info(self.plain_progress_text(line))

    def bar_text(self, line: _Line) -> str:
        fraction = min(1.0, line.done / line.total) if line.total > 0 else 1.0
        cols = self.width or _terminal_width()
        via = f" via {line.path.label}" if line.path else ""
        stats = (f" {fraction * 100:5.1f}% {format_rate(line.rate):>11} "
                 f"ETA {format_eta(line.eta)}{via}")
        room = max(10, cols - len(stats) - 4)
        name_room = max(8, room // 2)
        name = line.name if len(line.name) <= name_room else line.name[: name_room - 1] + "…"
        bar_room = max(5, room - len(name) - 1)
        filled = int(bar_room * fraction)
        bar = "#" * filled + "-" * (bar_room - filled)
        return f"{name} [{bar}]{stats}"[: max(cols - 1, 20)]

    def plain_progress_text(self, line: _Line) -> str:
        pct = (line.done / line.total * 100) if line.total > 0 else 100.0
        via = f" via {line.path.label}" if line.path else ""
        return (f"{line.name}: {pct:.0f}% ({format_size(line.done)} of "
                f"{format_size(line.total)}, {format_rate(line.rate)}, "
                f"ETA {format_eta(line.eta)}){via}")

    def finished(self, ev: Completed | Failed, *, verb: str, peer: str) -> None:
        """The one result line of a transfer (shown even with --quiet)."""
        line = self._lines.setdefault(ev.transfer_id, _Line(name=ev.transfer_id))
        via = f" via {line.path.label}" if line.path else ""
        if isinstance(ev, Completed) and (ev.protection or line.protection):
            via += f", {ev.protection.value if ev.protection else line.protection}"
        if isinstance(ev, Completed):
            how = ev.verification or _assumed_verification(ev.verified, verb)
            where = f" -> {safe_text(ev.path, 400)}" if verb == "Received" else ""
            if how.verified:
                algo = line.verified_algo or ", ".join(sorted(ev.hashes))
                tail = f", {how.text} ({algo}){where}"
            else:
                # Not verified, said plainly, with our own digest to compare by hand.
                sha = ev.hashes.get("sha-256")
                tail = f"{where}; {how.text}" + (f"; sha-256 {sha.hex()}" if sha else "")
            self.ok(f"{verb} {line.name} ({format_size(ev.size)}) "
                    f"{'to' if verb == 'Sent' else 'from'} {safe_text(peer)}{via}{tail}")
        else:
            self.error(f"{line.name}: {safe_text(ev.reason, 400)}{via}")


def _assumed_verification(verified: bool, verb: str) -> Verification:
    """For a Completed that does not say how it was checked (``verification`` None)."""
    if verb == "Sent":
        return Verification.RECEIVER_CONFIRMED if verified else Verification.NOT_CONFIRMED
    return Verification.SENDER_HASH if verified else Verification.NO_SENDER_HASH


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(2).columns
    except OSError:
        return 80


class JsonView:
    """NDJSON on ``stream`` (stdout): exactly one JSON object per line."""

    def __init__(self, stream: TextIO, *, clock: Clock = time.monotonic,
                 interval: float = JSON_PROGRESS_INTERVAL) -> None:
        self.stream = stream
        self.clock = clock
        self.interval = interval
        self._last_progress: dict[str, float] = {}

    def write(self, obj: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
        self.stream.flush()

    def record(self, event: str, **fields: Any) -> None:
        """A CLI-level event (``offer``, ``declined``, ``summary``...)."""
        self.write({"v": JSON_SCHEMA_VERSION, "event": event, **fields})

    def event(self, ev: TransferEvent) -> None:
        """A façade event; progress is throttled, except the final 100 % one."""
        if isinstance(ev, Progress):
            now = self.clock()
            last = self._last_progress.get(ev.transfer_id)
            complete = ev.total > 0 and ev.done >= ev.total
            if last is not None and now - last < self.interval and not complete:
                return
            self._last_progress[ev.transfer_id] = now
        self.write(ev.to_json())


def error_text(exc: BaseException) -> str:
    """The one line (or paragraph) a command prints for ``exc``."""
    if isinstance(exc, KeyringUnavailable):
        return exc.user_message
    if isinstance(exc, UsageError):
        return str(exc) or exc.user_message
    if isinstance(exc, JingleFSError):
        return exc.user_message
    return f"unexpected error: {type(exc).__name__}: {exc}"


class Output:
    """Where a command's output goes: a HumanView on stderr, a JsonView on stdout."""

    def __init__(self, *, json_mode: bool, quiet: bool) -> None:
        self.json = JsonView(sys.stdout) if json_mode else None
        self.human = HumanView(sys.stderr, quiet=quiet or json_mode)
        self.summary_written = False

    def info(self, text: str) -> None:
        self.human.info(text)

    def warn(self, text: str) -> None:
        self.human.always(f"warning: {text}")

    def record(self, event: str, **fields: Any) -> None:
        if self.json is not None:
            self.json.record(event, **fields)

    def transfer_event(self, t: TransferLike, ev: TransferEvent, verb: str) -> None:
        if self.json is not None:
            self.json.event(ev)
        self.human.event(ev)
        if isinstance(ev, Completed | Failed):
            self.human.finished(ev, verb=verb, peer=t.peer)

    def fatal(self, exc: BaseException) -> int:
        code = exit_code_for(exc)
        text = error_text(exc)
        prefix = "jinglefs: error: " if isinstance(exc, UsageError) else "error: "
        self.human.always(prefix + text)
        self.summary(ok=False, exit_code=code, error=text)
        return code

    def summary(self, *, ok: bool, exit_code: int, **fields: Any) -> None:
        if self.json is not None and not self.summary_written:
            self.summary_written = True
            self.json.record("summary", ok=ok, exit_code=exit_code, **fields)
