"""Untrusted file names: sanitizing, display and numbered names (XEP-0234 §5)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from jinglefs.transfer.names import (
    UnsafePathError,
    display_name,
    numbered_name,
    safe_filename,
    safe_relative_path,
)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        (".", "file"),
        ("", "file"),
        ("   ", "file"),
        ("/etc/shadow", "shadow"),
        ("C:\\Windows\\System32\\evil.dll", "evil.dll"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("C:evil.exe", "evil.exe"),
        ("dir/", "file"),
        ("a\x00b.txt", "ab.txt"),
        ("new\nline\r.txt", "newline.txt"),
        ("tab\there\x7f\x85.txt", "tabhere.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a\u2066b\u2069\u200e\u200f\u061c.txt", "ab.txt"),
        (".bashrc", "bashrc"),
        ("...hidden", "hidden"),
        ("trailing. . .", "trailing"),
        ("spaces   ", "spaces"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("Nul.tar.gz", "_Nul.tar.gz"),
        ("COM1", "_COM1"),
        ("lpt9.log", "_lpt9.log"),
        ("COM10.txt", "COM10.txt"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ('what?<>|*:".txt', "what_______.txt"),
        ("caf\u0065\u0301.txt", "caf\u00e9.txt"),  # NFC
    ],
)
def test_safe_filename_table(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_long_name_capped_keeping_extension() -> None:
    out = safe_filename("a" * 300 + ".tar.gz")
    assert len(out.encode()) == 255
    assert out.endswith(".tar.gz") and out.startswith("aaa")
    # Multi-byte characters are never cut in half.
    out = safe_filename("é" * 300 + ".txt")
    assert len(out.encode()) <= 255 and out.endswith(".txt")
    assert out[:-4] == "é" * ((255 - 4) // 2)
    # A 300-byte "extension" is not kept whole.
    out = safe_filename("x." + "e" * 300)
    assert len(out.encode()) == 255


@pytest.mark.parametrize("raw", ["../x", "/", "a/../../b", "C:\\x", "\\\\server\\share"])
def test_safe_filename_never_a_path(raw: str) -> None:
    out = safe_filename(raw)
    assert "/" not in out and "\\" not in out and out not in ("", ".", "..")


def test_safe_relative_path() -> None:
    assert safe_relative_path("photos/2026/img.jpg") == PurePosixPath("photos/2026/img.jpg")
    assert safe_relative_path("a\\b//./c") == PurePosixPath("a/b/c")
    assert safe_relative_path("") == PurePosixPath(".")
    assert safe_relative_path("CON/.hidden/x\u202e") == PurePosixPath("_CON/hidden/x")
    for bad in ("../x", "a/../b", "a/..", "/etc", "\\x", "C:\\x", "C:x", "a/.../b"):
        with pytest.raises(UnsafePathError):
            safe_relative_path(bad)
    with pytest.raises(UnsafePathError):
        safe_relative_path("/".join(["d"] * 40))


def test_display_name_shows_controls_and_keeps_extension() -> None:
    assert display_name("invoice\u202egpj.exe") == "invoice\\u202egpj.exe"
    assert display_name("a\nb\x00") == "a\\u000ab\\u0000"
    long = "x" * 200 + ".exe"
    shown = display_name(long, max_chars=40)
    assert len(shown) <= 40 and shown.endswith(".exe") and "\u2026" in shown


def test_numbered_name_keeps_the_extension_and_the_length_limit() -> None:
    assert numbered_name("a.txt", 0) == "a.txt"
    assert numbered_name("a.txt", 3) == "a (3).txt"
    assert numbered_name("x.tar.gz", 1) == "x (1).tar.gz"
    assert numbered_name("noext", 1) == "noext (1)"
    got = numbered_name("n" * 251 + ".txt", 1)
    assert got.endswith(" (1).txt") and len(got.encode()) == 255
