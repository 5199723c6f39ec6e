"""XEP-0300 hash names <-> :mod:`hashlib`, and digest verification.

Names follow XEP-0300 §3 (IANA "Hash Function Textual Names" plus XEP-0300's own
table) and XEP-0414 §5 (MUST sha-256, sha3-256, BLAKE2b512; SHOULD sha-512,
sha3-512, BLAKE2b256; SHOULD NOT sha-1).  Peers spell BLAKE2b three ways
(docs/protocol.md §9.1), so :func:`normalize_algo` maps every spelling seen in the wild
to one canonical name.

Verification policy (XEP-0414 §3: "verify all or the strongest"):
jinglefs verifies **all** algorithms it knows that the peer supplied.  A single
mismatching digest fails the transfer, even if a stronger one matched, because a
disagreement between two digests of the same bytes means something is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol

from ..jingle.ns import HASH_NAMES


class Hasher(Protocol):
    """The subset of a :mod:`hashlib` object the engine uses."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


def _blake2b(size: int) -> Callable[[], Hasher]:
    return lambda: hashlib.blake2b(digest_size=size)


# Canonical XEP-0300 name -> constructor.  Order = strength, strongest first
# (XEP-0414 §5 ranking; 512-bit outputs before 256-bit, sha-1 last).
_CONSTRUCTORS: dict[str, Callable[[], Hasher]] = {
    "sha3-512": hashlib.sha3_512,
    "blake2b-512": _blake2b(64),
    "sha-512": hashlib.sha512,
    "sha3-256": hashlib.sha3_256,
    "blake2b-256": _blake2b(32),
    "sha-256": hashlib.sha256,
    "sha-1": hashlib.sha1,  # XEP-0414 §5: SHOULD NOT; accepted for verification only
}
_STRENGTH = {name: rank for rank, name in enumerate(_CONSTRUCTORS)}
_DIGEST_SIZE = {name: len(make().digest()) for name, make in _CONSTRUCTORS.items()}

#: Algorithms jinglefs computes on request and advertises (XEP-0300 §5 disco features).
SUPPORTED_ALGOS: tuple[str, ...] = tuple(a for a in _CONSTRUCTORS if a != "sha-1")
#: The algorithm jinglefs uses for its own offers/checksums: fastest here (SHA-NI) and a
#: XEP-0414 MUST, so every conforming peer can check it.
DEFAULT_ALGO = "sha-256"

# Compact form (lower case, no "id-" prefix, no separators) -> canonical name.
_ALIASES: dict[str, str] = {
    "sha1": "sha-1",
    "sha256": "sha-256",
    "sha512": "sha-512",
    "sha3256": "sha3-256",
    "sha3512": "sha3-512",
    "blake2b256": "blake2b-256",
    "blake2b512": "blake2b-512",
}
_SEPARATORS = re.compile(r"[-_\s]")


def normalize_algo(name: str) -> str | None:
    """The canonical XEP-0300 name for ``name``, or ``None`` if jinglefs does not know it.

    Tolerates case, an ``id-`` prefix (IANA OID names, XEP-0447 examples) and any
    ``-``/``_`` separators: ``SHA-256``, ``sha256``, ``BLAKE2b512``, ``id-blake2b512``
    and ``blake2b-512`` all work.  md5 and friends (XEP-0414 §5: MUST NOT) are unknown.
    """
    compact = name.strip().lower()
    if compact.startswith("id-"):
        compact = compact[3:]
    return _ALIASES.get(_SEPARATORS.sub("", compact))


def disco_features() -> list[str]:
    """XEP-0300 §5 features: one ``urn:xmpp:hash-function-text-names:<algo>`` per algo."""
    return [HASH_NAMES + algo for algo in SUPPORTED_ALGOS]


def pick_strongest(names: Iterable[str]) -> str | None:
    """The strongest algorithm among ``names`` that jinglefs can compute (canonical name).

    sha-1 is chosen only when nothing better is offered (it is still worth checking).
    """
    known = {c for c in map(normalize_algo, names) if c is not None}
    return min(known, key=_STRENGTH.__getitem__, default=None)


def canonical_hashes(hashes: Mapping[str, bytes]) -> dict[str, bytes]:
    """``hashes`` keyed by canonical names; unknown algorithms and empty digests are dropped.

    An empty digest is what ``<hash algo='…'/>`` or ``<hash-used/>`` (XEP-0300 §3,
    XEP-0234 §5) announce: the algorithm, with the value to come later.
    """
    out: dict[str, bytes] = {}
    for name, digest in hashes.items():
        canonical = normalize_algo(name)
        if canonical is not None and digest:
            out[canonical] = bytes(digest)
    return out


class MultiHasher:
    """Feeds the same bytes to several hash functions at once.

    hashlib releases the GIL for inputs over 2 KiB, so ``update`` can run in a worker
    thread while the event loop keeps receiving.
    """

    def __init__(self, algos: Iterable[str] = (DEFAULT_ALGO,)) -> None:
        self._hashers: dict[str, Hasher] = {}
        for algo in algos:
            canonical = normalize_algo(algo)
            if canonical is None:
                raise ValueError(f"unsupported hash algorithm {algo!r}")
            if canonical not in self._hashers:
                self._hashers[canonical] = _CONSTRUCTORS[canonical]()
        self.count = 0  # bytes hashed so far

    @property
    def algos(self) -> tuple[str, ...]:
        return tuple(self._hashers)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for h in self._hashers.values():
            h.update(data)
        self.count += len(data)

    def digests(self) -> dict[str, bytes]:
        """Canonical name -> raw digest of everything hashed so far (hashing may continue)."""
        return {algo: h.digest() for algo, h in self._hashers.items()}


class Verification(NamedTuple):
    """Result of :func:`verify`.

    ``algo`` is the algorithm that decided: the first mismatching one, else the
    strongest one checked, else ``None`` when no digest could be checked at all.
    ``ok`` is False only on a mismatch.
    """

    algo: str | None
    ok: bool

    @property
    def verified(self) -> bool:
        """True when at least one digest was checked and every checked digest matched."""
        return self.ok and self.algo is not None


def verify(expected: Mapping[str, bytes], actual: Mapping[str, bytes]) -> Verification:
    """Check every known algorithm present in both ``expected`` and ``actual``.

    XEP-0300 lets a receiver verify all given digests or only the strongest; jinglefs
    checks **all** of them (see the module docstring).  Names in either mapping may
    be in any spelling.  Mismatches are reported strongest first.
    """
    want = canonical_hashes(expected)
    have = canonical_hashes(actual)
    common = sorted(set(want) & set(have), key=_STRENGTH.__getitem__)
    for algo in common:
        if len(want[algo]) != _DIGEST_SIZE[algo] or not hmac.compare_digest(
            want[algo], have[algo]
        ):
            return Verification(algo, False)
    return Verification(common[0] if common else None, True)
