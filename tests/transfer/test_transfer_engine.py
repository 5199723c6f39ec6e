"""Sender + receiver over in-memory streams: bytes, hashes, failures, safety, resume."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest

from jinglefs.errors import ChecksumMismatch, SizeMismatch, StorageError, StreamClosed
from jinglefs.streams import MemoryStream, memory_stream_pair
from jinglefs.transfer import receiver as receiver_mod
from jinglefs.transfer.partials import PartialStore
from jinglefs.transfer.receiver import PART_SUFFIX, IncomingFile
from jinglefs.transfer.sender import open_for_sending, send_file

PEER = "alice@example.org"
# Bigger than every buffer in play: READ_SIZE / BATCH_BYTES / CHUNK_SIZE (1 MiB), the
# worker queue (MAX_PENDING x 1 MiB), the read-ahead (4 MiB) and MemoryStream's 1 MiB.
BIG = 9 * (1 << 20) + 12_345


def make_file(path: Path, size: int, seed: int = 1) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


async def transfer(src: Path, inc: IncomingFile, *, offset: int = 0,
                   threaded: bool = True) -> dict[str, bytes]:
    a, b = memory_stream_pair()
    digests, _ = await asyncio.gather(send_file(a, src, offset=offset),
                                      inc.receive(b, threaded=threaded))
    return digests


@pytest.fixture(autouse=True)
def state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The resume records' folder (JINGLEFS_STATE_DIR/partials), away from the user's and
    from the test's folders."""
    root = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(root))
    return root / "partials"


def records(state: Path) -> list[dict[str, object]]:
    """The resume records in the state folder, as written."""
    if not state.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(state.iterdir())]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    return src, dest


@pytest.mark.parametrize("size", [0, 1, 3_000_000, BIG])
@pytest.mark.parametrize("threaded", [True, False])
async def test_round_trip(dirs: tuple[Path, Path], size: int, threaded: bool,
                          state: Path) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f.bin", size)
    inc = IncomingFile.create(dest, "f.bin", size, peer=PEER)
    assert inc.offset == 0
    assert listing(dest) == [] and inc.part_name is None  # nothing before the first byte
    progress: list[tuple[int, int]] = []
    a, b = memory_stream_pair()
    sent, _ = await asyncio.gather(
        send_file(a, src_dir / "f.bin"),
        inc.receive(b, threaded=threaded, on_progress=lambda d, t: progress.append((d, t))))
    assert sent == {"sha-256": sha256(data)}
    assert inc.digests["sha-256"] == sha256(data)
    # Not final yet: one partial in the folder, its resume record in the state folder.
    assert listing(dest) == ["f.bin" + PART_SUFFIX]
    [record] = records(state)
    assert (record["folder"], record["part_name"]) == (str(dest.resolve()), "f.bin" + PART_SUFFIX)
    assert (record["peer"], record["name"], record["size"]) == (PEER, "f.bin", size)
    final = inc.finish(sent)
    assert final == dest.resolve() / "f.bin"
    assert final.read_bytes() == data
    assert inc.verified and inc.verification is not None
    assert inc.verification.algo == "sha-256"
    assert listing(dest) == ["f.bin"]
    assert records(state) == []
    if size:
        assert progress[-1] == (size, size)
        assert [d for d, _ in progress] == sorted(d for d, _ in progress)


async def test_receiver_never_reads_past_size(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 2_500_000)
    a, b = memory_stream_pair()
    asked: list[int] = []
    real_receive = b.receive

    async def spy(max_bytes: int) -> bytes:
        asked.append(max_bytes)
        return await real_receive(max_bytes)

    b.receive = spy  # type: ignore[method-assign]
    inc = IncomingFile.create(dest, "f", len(data), peer=PEER)

    async def sender() -> None:
        await send_file(a, src_dir / "f")
        await a.send(b"TRAILER")

    await asyncio.gather(sender(), inc.receive(b))
    assert asked[-1] <= 2_500_000 % (1 << 20) or asked[-1] == 1 << 20
    assert sum(1 for n in asked if n > receiver_mod.READ_SIZE) == 0
    assert await real_receive(100) == b"TRAILER"  # left on the stream for whoever is next
    assert inc.finish().read_bytes() == data
    assert not inc.verified  # no digest given: saved but unverified
    assert inc.verification is not None and inc.verification.algo is None


class CorruptingStream:
    """Flips one byte at absolute position ``at`` of what passes through."""

    def __init__(self, inner: MemoryStream, at: int) -> None:
        self.inner, self.at, self.pos = inner, at, 0

    async def send(self, data: bytes | memoryview) -> None:
        await self.inner.send(data)

    async def receive(self, max_bytes: int) -> bytes:
        data = bytearray(await self.inner.receive(max_bytes))
        if self.pos <= self.at < self.pos + len(data):
            data[self.at - self.pos] ^= 0x01
        self.pos += len(data)
        return bytes(data)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_corrupted_byte_is_rejected_and_nothing_saved(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "doc.pdf", 2_000_000)
    inc = IncomingFile.create(dest, "doc.pdf", len(data), peer=PEER)
    a, b = memory_stream_pair()
    sent, _ = await asyncio.gather(send_file(a, src_dir / "doc.pdf"),
                                   inc.receive(CorruptingStream(b, 1_234_567)))
    assert sent["sha-256"] == sha256(data)
    with pytest.raises(ChecksumMismatch) as ei:
        inc.finish(sent)
    assert ei.value.algo == "sha-256"
    assert ei.value.expected == sha256(data)
    bad = bytearray(data)
    bad[1_234_567] ^= 1
    assert ei.value.actual == sha256(bytes(bad))
    assert listing(dest) == []  # neither final name nor partial nor sidecar


async def test_offer_hash_is_checked_too(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "x", 1000)
    wrong = {"sha-256": sha256(b"something else")}
    inc = IncomingFile.create(dest, "x", len(data), peer=PEER, hashes=wrong)
    await transfer(src_dir / "x", inc)
    with pytest.raises(ChecksumMismatch):
        inc.finish({"sha-256": sha256(data)})  # checksum fine, offer's hash is not
    assert listing(dest) == []


async def test_short_stream_is_size_mismatch(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 100_000)
    inc = IncomingFile.create(dest, "f", 100_000, peer=PEER)
    a, b = memory_stream_pair()

    async def sender() -> None:
        await a.send(data[:60_000])
        await a.aclose()

    with pytest.raises(SizeMismatch, match="received 60000 of 100000 bytes"):
        await asyncio.gather(sender(), inc.receive(b))
    with pytest.raises(RuntimeError):
        inc.finish()
    assert (dest / ("f" + PART_SUFFIX)).read_bytes() == data[:60_000]
    inc.abort(keep_partial=False)
    assert listing(dest) == []


async def test_hash_used_and_late_algorithms(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 1_500_000)
    # <hash-used algo='sha3-256'/> in the offer (empty value): computed while receiving.
    inc = IncomingFile.create(dest, "f", len(data), peer=PEER, hashes={"sha3-256": b""})
    await transfer(src_dir / "f", inc)
    assert inc.digests["sha3-256"] == hashlib.sha3_256(data).digest()
    final = inc.finish({"sha-1": hashlib.sha1(data).digest(),  # not computed: not re-read
                        "sha3-256": hashlib.sha3_256(data).digest()})
    assert inc.verification is not None
    assert inc.verification.algo == "sha3-256" and inc.verified
    assert final.read_bytes() == data


@pytest.mark.parametrize("good", [True, False])
async def test_checksum_in_uncomputed_algo_is_rehashed(dirs: tuple[Path, Path],
                                                       good: bool) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 1_500_000)
    inc = IncomingFile.create(dest, "f", len(data), peer=PEER)
    await transfer(src_dir / "f", inc)
    assert "blake2b-512" not in inc.digests
    digest = hashlib.blake2b(data if good else data + b"!").digest()
    if good:
        final = inc.finish({"BLAKE2b512": digest, "md5": b"ignored"})
        assert inc.verification is not None
        assert inc.verification.algo == "blake2b-512" and inc.verified
        assert final.read_bytes() == data
    else:
        with pytest.raises(ChecksumMismatch) as ei:
            inc.finish({"id-blake2b512": digest})
        assert ei.value.algo == "blake2b-512"
        assert ei.value.actual == hashlib.blake2b(data).digest()
        assert listing(dest) == []


async def test_collision_picks_free_name_and_sets_mtime(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "r.pdf", 5000)
    (dest / "report.pdf").write_bytes(b"existing")
    os.symlink(dest / "nowhere", dest / "report (1).pdf")  # broken link counts as taken
    date = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    inc = IncomingFile.create(dest, "report.pdf", len(data), peer=PEER, date=date)
    sent = await transfer(src_dir / "r.pdf", inc)
    final = inc.finish(sent)
    assert final.name == "report (2).pdf"
    assert final.read_bytes() == data
    assert (dest / "report.pdf").read_bytes() == b"existing"
    assert not (dest / "nowhere").exists()
    assert final.stat().st_mtime == date.timestamp()


async def test_hostile_name_stays_inside(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 10)
    inc = IncomingFile.create(dest, "../../etc/\u202epasswd", len(data), peer=PEER)
    final = inc.finish(await transfer(src_dir / "f", inc))
    assert final == dest.resolve() / "passwd"
    assert listing(dest.parent) == ["dest", "src"]


async def test_symlinks_in_dest_are_never_followed(dirs: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    src_dir, dest = dirs
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"precious")
    data = make_file(src_dir / "f", 4096)
    # Planted where the partials and the final file would go.
    os.symlink(victim, dest / ("a.txt" + PART_SUFFIX))
    os.symlink(outside / "new", dest / ("a (1).txt" + PART_SUFFIX))
    os.symlink(outside / "final", dest / "a.txt")
    inc = IncomingFile.create(dest, "a.txt", len(data), peer=PEER)
    sent = await transfer(src_dir / "f", inc)
    assert inc.part_name == "a (2).txt" + PART_SUFFIX
    final = inc.finish(sent)
    assert final.name == "a (1).txt"
    assert final.read_bytes() == data and not final.is_symlink()
    assert victim.read_bytes() == b"precious"
    assert listing(outside) == ["victim"]


async def test_symlink_as_relative_dir_component(dirs: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    _, dest = dirs
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, dest / "album")
    with pytest.raises(StorageError, match="symbolic link"):
        IncomingFile.create(dest, "x.jpg", 1, peer=PEER,
                            relative_dir=PurePosixPath("album/2026"))
    (dest / "ok").mkdir()
    os.symlink(outside, dest / "ok" / "deep")
    with pytest.raises(StorageError, match="symbolic link"):
        IncomingFile.create(dest, "x.jpg", 1, peer=PEER, relative_dir=PurePosixPath("ok/deep"))
    assert listing(outside) == []
    with pytest.raises(StorageError):
        IncomingFile.create(dest, "x", 1, peer=PEER, relative_dir=PurePosixPath("../x"))


async def test_relative_dir_is_created(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 777)
    inc = IncomingFile.create(dest, "img.jpg", len(data), peer=PEER,
                              relative_dir=PurePosixPath("photos/2026"))
    assert listing(dest) == []  # the folders come with the first byte
    final = inc.finish(await transfer(src_dir / "f", inc))
    assert final == dest.resolve() / "photos" / "2026" / "img.jpg"
    assert final.read_bytes() == data


async def interrupted(src: Path, dest: Path, data: bytes, cut: int, name: str = "movie.mkv",
                      **kw: object) -> None:
    """Receive the first ``cut`` bytes, then the link drops; keep the partial."""
    inc = IncomingFile.create(dest, name, len(data), peer=PEER, **kw)  # type: ignore[arg-type]
    a, b = memory_stream_pair()

    async def sender() -> None:
        await a.send(data[:cut])
        await a.aclose()

    with pytest.raises(SizeMismatch):
        await asyncio.gather(sender(), inc.receive(b))
    inc.abort(keep_partial=True)


async def test_resume_after_truncation(dirs: tuple[Path, Path], state: Path) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "movie.mkv", BIG)
    date = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    hashes = {"sha-256": sha256(data)}
    await interrupted(src_dir / "movie.mkv", dest, data, 5_000_000, hashes=hashes, date=date)
    part = dest / ("movie.mkv" + PART_SUFFIX)
    assert listing(dest) == ["movie.mkv" + PART_SUFFIX]  # no sidecar beside it
    [record] = records(state)
    assert record["date"] == date.isoformat() and record["peer"] == PEER
    assert record["hashes"] == {"sha-256": base64.b64encode(sha256(data)).decode()}
    assert part.read_bytes() == data[:5_000_000]
    with part.open("r+b") as f:  # e.g. a crash lost the last unsynced blocks
        f.truncate(3_333_333)
    # A different peer, size, date or digest never resumes this partial.
    assert IncomingFile.find_resumable(dest, "movie.mkv", BIG, peer="eve@evil.example",
                                       hashes=hashes) is None
    assert IncomingFile.find_resumable(dest, "movie.mkv", BIG + 1, peer=PEER) is None
    assert IncomingFile.find_resumable(dest, "movie.mkv", BIG, peer=PEER,
                                       date=datetime(2026, 1, 2, tzinfo=UTC)) is None
    assert IncomingFile.find_resumable(dest, "movie.mkv", BIG, peer=PEER,
                                       hashes={"sha-256": bytes(32)}) is None
    inc = IncomingFile.open(dest, "movie.mkv", BIG, peer="Alice@Example.org", hashes=hashes,
                            date=date)
    assert inc.offset == 3_333_333
    # While one transfer holds it, another cannot resume the same partial.
    assert IncomingFile.find_resumable(dest, "movie.mkv", BIG, peer=PEER) is None
    sent = await transfer(src_dir / "movie.mkv", inc, offset=inc.offset)
    assert sent["sha-256"] == sha256(data)  # sender hashed its skipped prefix too
    assert inc.digests["sha-256"] == sha256(data)  # ... and so did the receiver
    final = inc.finish(sent)
    assert final.read_bytes() == data and inc.verified
    assert listing(dest) == ["movie.mkv"] and records(state) == []


async def test_resume_refuses_symlinked_partial(dirs: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "movie.mkv", 50_000)
    await interrupted(src_dir / "movie.mkv", dest, data, 20_000)
    part = dest / ("movie.mkv" + PART_SUFFIX)
    victim = tmp_path / "victim"
    victim.write_bytes(b"x" * 100)
    part.unlink()
    os.symlink(victim, part)
    assert IncomingFile.find_resumable(dest, "movie.mkv", len(data), peer=PEER) is None
    inc = IncomingFile.open(dest, "movie.mkv", len(data), peer=PEER)
    assert inc.offset == 0 and inc.part_name is None
    await transfer(src_dir / "movie.mkv", inc)
    assert inc.part_name == "movie (1).mkv" + PART_SUFFIX
    inc.abort()
    assert victim.read_bytes() == b"x" * 100


async def test_abort_keeps_or_removes(dirs: tuple[Path, Path], state: Path) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "a", 10)
    # Accepted but not a byte arrived: nothing on disk, whatever abort is asked.
    inc = IncomingFile.create(dest, "a", 10, peer=PEER)
    inc.abort(keep_partial=True)
    assert listing(dest) == [] and records(state) == []
    # Four bytes arrived: the partial and its record are kept for a resume.
    await interrupted(src_dir / "a", dest, data, 4, name="a")
    assert listing(dest) == ["a" + PART_SUFFIX] and len(records(state)) == 1
    again = IncomingFile.find_resumable(dest, "a", 10, peer=PEER)
    assert again is not None and again.offset == 4
    again.abort(keep_partial=False)
    again.abort(keep_partial=False)  # idempotent
    assert listing(dest) == [] and records(state) == []


async def test_offers_that_never_deliver_leave_nothing(dirs: tuple[Path, Path],
                                                       state: Path) -> None:
    """50 accepted offers, each ended before its first byte (the sender vanished, or
    cancelled, or the stream broke at once), in a flat folder and in a folder transfer."""
    _, dest = dirs
    for i in range(50):
        rel = PurePosixPath(f"album/{i}") if i % 2 else None
        inc = IncomingFile.create(dest, f"photo-{i}.jpg", 1000 + i, peer=PEER, relative_dir=rel)
        if i % 3 == 0:
            a, b = memory_stream_pair()
            await a.aclose()  # the link breaks before any byte
            with pytest.raises(SizeMismatch):
                await inc.receive(b)
        inc.abort(keep_partial=bool(i % 5))
    assert listing(dest) == [] and records(state) == []


async def test_stale_records_are_pruned(dirs: tuple[Path, Path], state: Path) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "movie.mkv", 50_000)
    await interrupted(src_dir / "movie.mkv", dest, data, 20_000)
    await interrupted(src_dir / "movie.mkv", dest, data, 30_000, name="other.mkv")
    assert listing(dest) == ["movie.mkv" + PART_SUFFIX, "other.mkv" + PART_SUFFIX]
    assert len(records(state)) == 2
    # The user deletes one partial, and puts another file where the other one was.
    (dest / ("movie.mkv" + PART_SUFFIX)).unlink()
    other = dest / ("other.mkv" + PART_SUFFIX)
    other.unlink()
    other.write_bytes(data[:30_000])
    assert IncomingFile.find_resumable(dest, "other.mkv", len(data), peer=PEER) is None
    assert records(state) == []  # both records are gone; the user's file is untouched
    assert other.read_bytes() == data[:30_000]
    assert [r.part_name for r in PartialStore(state).records()] == []


async def test_receive_cancelled_midway(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", BIG)
    inc = IncomingFile.create(dest, "f", BIG, peer=PEER)
    a, b = memory_stream_pair()
    task = asyncio.ensure_future(inc.receive(b))
    await a.send(data[:2_000_000])
    while inc.received < 2_000_000:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    inc.abort(keep_partial=True)
    part = (dest / ("f" + PART_SUFFIX)).read_bytes()
    assert part == data[: len(part)]


async def test_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="destination folder"):
        IncomingFile.create(tmp_path / "missing", "x", 1, peer=PEER)
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions do not apply
            (ro / "blocker").mkdir()
            with pytest.raises(StorageError, match="destination folder"):
                IncomingFile.create(ro / "blocker" / "x", "x", 1, peer=PEER)
        else:
            with pytest.raises(StorageError, match="could not create"):
                IncomingFile.create(ro, "x", 1, peer=PEER)
    finally:
        os.chmod(ro, 0o700)


# -- sender ------------------------------------------------------------------------


async def test_send_range_returns_full_file_digests(tmp_path: Path) -> None:
    data = make_file(tmp_path / "f", 3_000_000)
    a, b = memory_stream_pair()

    async def read_all() -> bytes:
        got = b""
        while len(got) < 1_500_000:
            got += await b.receive(1 << 20)
        return got

    digests, got = await asyncio.gather(
        send_file(a, tmp_path / "f", offset=1_000_000, length=1_500_000,
                  algos=("sha-256", "BLAKE2b512")),
        read_all())
    assert digests == {"sha-256": sha256(data), "blake2b-512": hashlib.blake2b(data).digest()}
    assert got == data[1_000_000:2_500_000]
    with pytest.raises(ValueError):
        await send_file(a, tmp_path / "f", offset=2_000_000, length=1_000_001)


async def test_open_for_sending_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_for_sending(tmp_path / "nope")
    os.symlink(tmp_path / "nope", tmp_path / "dangling")
    with pytest.raises(StorageError, match="broken symbolic link"):
        open_for_sending(tmp_path / "dangling")
    with pytest.raises(StorageError, match="is a folder"):
        open_for_sending(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(StorageError, match="not a regular file"):
        open_for_sending(tmp_path / "fifo")
    with pytest.raises(StorageError, match="not a regular file"):
        open_for_sending("/dev/null")
    (tmp_path / "ok").write_bytes(b"abc")
    with open_for_sending(tmp_path / "ok") as src:
        assert src.size == 3


@pytest.mark.parametrize("change", ["grow", "shrink"])
async def test_send_detects_size_change(tmp_path: Path, change: str) -> None:
    data = make_file(tmp_path / "f", 64 * 1024)
    a, b = memory_stream_pair(limit=1 << 30)
    src = open_for_sending(tmp_path / "f")
    changed = False

    def meddle(done: int, total: int) -> None:
        nonlocal changed
        if not changed:
            changed = True
            with open(tmp_path / "f", "r+b") as f:
                if change == "grow":
                    f.seek(0, os.SEEK_END)
                    f.write(b"more")
                else:
                    f.truncate(len(data) // 2)

    with src, pytest.raises(StorageError, match="while it was being sent"):
        await send_file(a, src, on_progress=meddle, chunk_size=1024)


async def test_send_to_closed_stream(tmp_path: Path) -> None:
    make_file(tmp_path / "f", 5_000_000)
    a, b = memory_stream_pair()
    await b.aclose()
    with pytest.raises(StreamClosed):
        await send_file(a, tmp_path / "f")


async def test_write_error_becomes_storage_error(dirs: tuple[Path, Path]) -> None:
    import resource
    import signal

    src_dir, dest = dirs
    data = make_file(src_dir / "f", 3_000_000)
    inc = IncomingFile.create(dest, "big", len(data), peer=PEER)
    a, b = memory_stream_pair(limit=1 << 30)  # the sender never blocks
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, hard))  # writes past 1 MB: EFBIG
    try:
        await a.send(data)
        with pytest.raises(StorageError, match="could not write"):
            await inc.receive(b)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    inc.abort(keep_partial=False)
    assert listing(dest) == []


async def test_long_hostile_name_round_trip(dirs: tuple[Path, Path]) -> None:
    src_dir, dest = dirs
    data = make_file(src_dir / "f", 100)
    name = "\u00e9" * 300 + ".tar.gz"
    inc = IncomingFile.create(dest, name, len(data), peer=PEER)
    sent = await transfer(src_dir / "f", inc)
    assert inc.part_name is not None and len(inc.part_name.encode()) <= 255
    assert inc.part_name.endswith(".tar.gz" + PART_SUFFIX)
    final = inc.finish(sent)
    assert final.name.endswith(".tar.gz") and len(final.name.encode()) <= 255
    assert final.read_bytes() == data
    # The same name again: "(1)" still fits in 255 bytes.
    inc2 = IncomingFile.create(dest, name, len(data), peer=PEER)
    final2 = inc2.finish(await transfer(src_dir / "f", inc2))
    assert final2 != final and final2.name.endswith(" (1).tar.gz")
    assert len(final2.name.encode()) <= 255 and final2.read_bytes() == data


async def test_resume_of_complete_partial(dirs: tuple[Path, Path]) -> None:
    """Crash after the last byte but before the rename: offset == size, nothing to fetch."""
    src_dir, dest = dirs
    data = make_file(src_dir / "movie.mkv", 2_000_000)
    await interrupted(src_dir / "movie.mkv", dest, data, len(data) - 1)
    with (dest / ("movie.mkv" + PART_SUFFIX)).open("ab") as f:
        f.write(data[-1:])
    inc = IncomingFile.open(dest, "movie.mkv", len(data), peer=PEER)
    assert inc.offset == len(data)
    a, b = memory_stream_pair()
    await inc.receive(b)  # reads nothing, hashes what is on disk
    assert inc.finish({"sha-256": sha256(data)}).read_bytes() == data
