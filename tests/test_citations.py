"""Every section the code cites exists.

Comments and docstrings cite XEP sections ("XEP-0234 §8.2", "(XEP-0260 §2.4)", "XEP-0166 § 7.2.15",
"XEP-0047 §2.1–§2.3") and this repository's protocol notes ("docs/protocol.md §6.4").  The XEP
sections are checked against tests/xep_sections.py (transcribed from the xsf/xeps sources), the
docs/protocol.md sections against that file's numbered headings.  A section that exists but is
about something else is not caught here; that still needs a reader.

RFC citations (RFC 6120 §8.3, RFC 1928 §4, RFC 8445 §5.1.2, ...) are not checked: the RFC texts
are not kept in this repository, so there is no table to check them against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.xep_sections import XEP_SECTIONS

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_MD = ROOT / "docs/protocol.md"
SCANNED_DIRS = ("jinglefs", "ui", "tests", "benchmarks", "scripts", "docs")
SCANNED_FILES = ("README.md",)
SUFFIXES = (".py", ".md")

_SECTION = r"§ ?(\d+(?:\.\d+)*)"
# Between two parts of one citation: blanks, or a line break followed by a comment marker.
_GAP = r"(?:[ \t]*(?:\n[ \t]*(?:#:?|//|\*)?[ \t]*)?)"
# "§2.3/§2.4", "§6.3 / §10", "§2.1–§2.3", "§4, §6.3.5", "§3.2 and §3.3": one more section of
# the same document.
_MORE = rf"(?:{_GAP}(?:/|,|–|-|and|or|&){_GAP}{_SECTION})"
_XEP_RE = re.compile(rf"XEP-(\d{{4}}){_GAP}[,:]?{_GAP}{_SECTION}((?:{_MORE})*)")
_DOC_RE = re.compile(rf"docs/protocol\.md`?{_GAP}{_SECTION}((?:{_MORE})*)")
_MORE_RE = re.compile(_MORE)
# The notes file named without its docs/ folder: the team's copy outside this repository.
_FOREIGN_DOC_RE = re.compile(r"(?<!docs/)\bprotocol\.md")
_HEADING_RE = re.compile(r"^#{2,6} (\d+(?:\.\d+)*)\.? ", re.M)


@dataclass(frozen=True)
class Citation:
    """One cited section: ``document`` is "XEP-0234" or "docs/protocol.md"."""

    where: str
    line: int
    document: str
    section: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.document} §{self.section}"


def _sections(first: str, more: str) -> list[str]:
    return [first, *(m.group(1) for m in _MORE_RE.finditer(more))]


def find_citations(text: str, where: str = "<text>") -> list[Citation]:
    """Every XEP and docs/protocol.md section cited in ``text``, in order."""
    found: list[tuple[int, Citation]] = []
    for m in _XEP_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        for section in _sections(m.group(2), m.group(3)):
            found.append((m.start(), Citation(where, line, f"XEP-{m.group(1)}", section)))
    for m in _DOC_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        for section in _sections(m.group(1), m.group(2)):
            found.append((m.start(), Citation(where, line, "docs/protocol.md", section)))
    return [c for _, c in sorted(found, key=lambda pair: pair[0])]


def protocol_md_sections(text: str) -> set[str]:
    """The section numbers of docs/protocol.md's headings ("## 4. ..." -> "4")."""
    return set(_HEADING_RE.findall(text))


def wrong_citations(citations: list[Citation], doc_sections: set[str]) -> list[str]:
    """One line per citation whose section does not exist."""
    wrong: list[str] = []
    for c in citations:
        if c.document == "docs/protocol.md":
            if c.section not in doc_sections:
                wrong.append(f"{c}: no such heading in docs/protocol.md")
            continue
        number = int(c.document.removeprefix("XEP-"))
        table = XEP_SECTIONS.get(number)
        if table is None:
            wrong.append(f"{c}: {c.document} is not in tests/xep_sections.py")
        elif c.section not in table:
            wrong.append(f"{c}: {c.document} has no such section")
    return wrong


def scanned_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES]
    for d in SCANNED_DIRS:
        files.extend(p for p in (ROOT / d).rglob("*") if p.suffix in SUFFIXES and p.is_file())
    return sorted(set(files))


def repo_citations() -> list[Citation]:
    out: list[Citation] = []
    for p in scanned_files():
        out.extend(find_citations(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix()))
    return out


# --------------------------------------------------------------------------- the repository


def test_every_cited_section_exists() -> None:
    citations = repo_citations()
    # The scanner must actually be reading the citations (the code has well over a hundred).
    assert sum(c.document.startswith("XEP-") for c in citations) > 100
    assert sum(c.document == "docs/protocol.md" for c in citations) > 40
    doc_sections = protocol_md_sections(PROTOCOL_MD.read_text(encoding="utf-8"))
    wrong = wrong_citations(citations, doc_sections)
    assert not wrong, "citations of sections that do not exist:\n" + "\n".join(wrong)


def test_no_reference_to_a_protocol_md_outside_the_repository() -> None:
    stale = []
    for p in scanned_files():
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if _FOREIGN_DOC_RE.search(line):
                stale.append(f"{p.relative_to(ROOT).as_posix()}:{i}: {line.strip()}")
    assert not stale, "cite docs/protocol.md instead:\n" + "\n".join(stale)


def test_protocol_md_headings_are_numbered_in_order() -> None:
    numbers = _HEADING_RE.findall(PROTOCOL_MD.read_text(encoding="utf-8"))
    expected: list[str] = []
    top = sub = 0
    for n in numbers:
        if "." in n:
            sub += 1
            expected.append(f"{top}.{sub}")
        else:
            top, sub = top + 1, 0
            expected.append(str(top))
    assert numbers == expected
    assert len(numbers) > 20


def test_section_table_matches_known_titles() -> None:
    # Spot checks against the XEP texts, so a mis-transcribed table cannot pass.
    assert XEP_SECTIONS[166]["6.3.1"] == "Acknowledgement"
    assert XEP_SECTIONS[166]["7.2.15"] == "transport-replace"
    assert XEP_SECTIONS[166]["7.2.16"] == "Tie Breaking Related to Jingle Actions"
    assert "7.2.17" not in XEP_SECTIONS[166]
    assert XEP_SECTIONS[234]["6.4"] == "Ranged Transfers"
    assert XEP_SECTIONS[234]["8.1"] == "Received"
    assert XEP_SECTIONS[234]["8.2"] == "Checksum"
    assert XEP_SECTIONS[260]["2.4"] == "Completing the Negotiation"
    assert XEP_SECTIONS[65]["5.3.2"] == (
        "Target Establishes SOCKS5 Connection with StreamHost/Requester")
    assert XEP_SECTIONS[47]["5"] == "Usage Guidelines"
    assert XEP_SECTIONS[414]["5"] == "Algorithm Recommendations"
    for number, table in XEP_SECTIONS.items():
        assert table, number
        assert all(title.strip() for title in table.values()), number


# --------------------------------------------------------------------------- the scanner

S = "\u00a7"  # written this way so the examples below are not citations of this file


def test_scanner_reads_every_citation_format() -> None:
    text = (
        f"# see XEP-0234 {S}8.2 and (XEP-0260 {S}2.4).\n"
        f"x = 1  # XEP-0166 {S} 7.2.15: replace\n"
        f'"""XEP-0047 {S}2.1–{S}2.3, XEP-0260 {S}2.3/{S}2.4 and docs/protocol.md {S}4,\n'
        f'{S}5, {S}15; RFC 6120 {S}8.3 is not ours."""\n'
        f"    # agree (XEP-0260\n    # {S}2.4, equal priorities)\n"
    )
    got = [(c.line, c.document, c.section) for c in find_citations(text)]
    assert got == [
        (1, "XEP-0234", "8.2"),
        (1, "XEP-0260", "2.4"),
        (2, "XEP-0166", "7.2.15"),
        (3, "XEP-0047", "2.1"),
        (3, "XEP-0047", "2.3"),
        (3, "XEP-0260", "2.3"),
        (3, "XEP-0260", "2.4"),
        (3, "docs/protocol.md", "4"),
        (3, "docs/protocol.md", "5"),
        (3, "docs/protocol.md", "15"),
        (5, "XEP-0260", "2.4"),
    ]


def test_scanner_reports_bogus_citations() -> None:
    text = (
        f"# fine: XEP-0166 {S}7.2.15 and docs/protocol.md {S}1.2\n"
        f"# wrong: XEP-0166 {S}7.2.17, XEP-0234 {S}7.1, docs/protocol.md {S}99.1\n"
        f"# unknown XEP: XEP-9999 {S}1; second of a pair: XEP-0047 {S}2.1/{S}2.9\n"
    )
    wrong = wrong_citations(find_citations(text, "bogus.py"), {"1", "1.2"})
    assert wrong == [
        f"bogus.py:2: XEP-0166 {S}7.2.17: XEP-0166 has no such section",
        f"bogus.py:2: XEP-0234 {S}7.1: XEP-0234 has no such section",
        f"bogus.py:2: docs/protocol.md {S}99.1: no such heading in docs/protocol.md",
        f"bogus.py:3: XEP-9999 {S}1: XEP-9999 is not in tests/xep_sections.py",
        f"bogus.py:3: XEP-0047 {S}2.9: XEP-0047 has no such section",
    ]


def test_foreign_protocol_md_is_recognised() -> None:
    name = "protocol" + ".md"
    assert _FOREIGN_DOC_RE.search(f"see /shared/{name} {S}3")
    assert _FOREIGN_DOC_RE.search(f"({name} {S}5.4)")
    assert not _FOREIGN_DOC_RE.search(f"(docs/{name} {S}6.4)")


def test_protocol_md_headings_parse() -> None:
    text = "# Title\n\n## 1. One\n\n### 1.1 Sub\n\n## 2. Two\nnot ## 3. a heading\n"
    assert protocol_md_sections(text) == {"1", "1.1", "2"}
