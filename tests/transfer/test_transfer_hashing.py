"""XEP-0300 / XEP-0414 names, MultiHasher and verification policy."""

from __future__ import annotations

import hashlib

import pytest

from jinglefs.transfer.hashing import (
    DEFAULT_ALGO,
    SUPPORTED_ALGOS,
    MultiHasher,
    canonical_hashes,
    disco_features,
    normalize_algo,
    pick_strongest,
    verify,
)

DATA = b"jinglefs " * 5000


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("sha-256", "sha-256"),
        ("SHA-256", "sha-256"),
        ("sha256", "sha-256"),
        ("SHA256", "sha-256"),
        ("sha-1", "sha-1"),
        ("SHA1", "sha-1"),
        ("sha-512", "sha-512"),
        ("sha3-256", "sha3-256"),
        ("SHA3_512", "sha3-512"),
        ("blake2b-256", "blake2b-256"),
        ("BLAKE2b256", "blake2b-256"),
        ("blake2b-512", "blake2b-512"),
        ("BLAKE2b512", "blake2b-512"),
        ("id-blake2b512", "blake2b-512"),
        ("ID-BLAKE2B256", "blake2b-256"),
        (" sha-256 ", "sha-256"),
        ("md5", None),
        ("sha-384", None),
        ("blake3", None),
        ("", None),
        ("id-", None),
    ],
)
def test_normalize_algo_spellings(spelling: str, canonical: str | None) -> None:
    assert normalize_algo(spelling) == canonical


def test_supported_algos_exclude_sha1_and_default_is_sha256() -> None:
    assert DEFAULT_ALGO == "sha-256"
    assert "sha-1" not in SUPPORTED_ALGOS
    assert set(SUPPORTED_ALGOS) == {"sha-256", "sha-512", "sha3-256", "sha3-512",
                                    "blake2b-256", "blake2b-512"}
    assert "urn:xmpp:hash-function-text-names:sha-256" in disco_features()
    assert len(disco_features()) == len(SUPPORTED_ALGOS)


def test_multihasher_matches_hashlib() -> None:
    h = MultiHasher(["SHA-256", "sha256", "id-blake2b512", "sha3-256", "sha-1"])
    assert h.algos == ("sha-256", "blake2b-512", "sha3-256", "sha-1")  # deduplicated
    h.update(DATA[:1000])
    h.update(memoryview(DATA)[1000:])
    d = h.digests()
    assert h.count == len(DATA)
    assert d["sha-256"] == hashlib.sha256(DATA).digest()
    assert d["blake2b-512"] == hashlib.blake2b(DATA).digest()
    assert d["sha3-256"] == hashlib.sha3_256(DATA).digest()
    assert d["sha-1"] == hashlib.sha1(DATA).digest()


def test_multihasher_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="md5"):
        MultiHasher(["md5"])


def test_pick_strongest() -> None:
    assert pick_strongest(["sha-1", "sha-256"]) == "sha-256"
    assert pick_strongest(["sha-256", "BLAKE2b512", "sha-512"]) == "blake2b-512"
    assert pick_strongest(["sha3-512", "blake2b-512"]) == "sha3-512"
    assert pick_strongest(["sha-1", "md5"]) == "sha-1"
    assert pick_strongest(["md5", "crc32"]) is None
    assert pick_strongest([]) is None


def test_verify_all_known_algos() -> None:
    actual = {"sha-256": hashlib.sha256(DATA).digest(), "sha-1": hashlib.sha1(DATA).digest(),
              "blake2b-512": hashlib.blake2b(DATA).digest()}
    # Conversations style: sha-1 + sha-256, spelled differently.
    r = verify({"SHA-1": actual["sha-1"], "sha256": actual["sha-256"]}, actual)
    assert r.verified
    assert r == ("sha-256", True)
    # Stronger one matches but a weaker one does not: still a failure.
    bad_sha1 = bytes(20)
    r = verify({"sha-1": bad_sha1, "BLAKE2b512": actual["blake2b-512"]}, actual)
    assert not r.verified
    assert r == ("sha-1", False)
    # Truncated digest is a mismatch, not an error.
    r = verify({"sha-256": actual["sha-256"][:16]}, actual)
    assert r == ("sha-256", False)


def test_verify_nothing_usable_is_unverified_not_failed() -> None:
    actual = {"sha-256": hashlib.sha256(DATA).digest()}
    for expected in ({}, {"md5": b"\x00" * 16}, {"sha-256": b""}, {"sha-512": b"\x01" * 64}):
        r = verify(expected, actual)
        assert not r.verified
        assert r == (None, True)


def test_canonical_hashes_drops_unknown_and_empty() -> None:
    assert canonical_hashes({"SHA256": b"x", "md5": b"y", "sha-512": b""}) == {"sha-256": b"x"}
