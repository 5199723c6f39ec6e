"""Codec against stanzas shaped like what deployed clients send (docs/protocol.md §5, §15)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest

from jinglefs.errors import RemoteProtocolError
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.jingle.codec import encode_jingle, parse_jingle
from jinglefs.jingle.model import Action, Checksum, FileTransferDescription, Reason, Role

CONVERSATIONS_OFFER = """
<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='Zt9q3kLw'>
  <content creator='initiator' name='0' senders='initiator'>
    <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
      <file><name>IMG_1.jpg</name><size>204800</size><mediaType>image/jpeg</mediaType></file>
    </description>
    <transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='ibb-1' block-size='8192'/>
  </content>
</jingle>"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_jingle(ET.fromstring(text))


def test_conversations_offer_without_initiator_and_with_camelcase_media_type() -> None:
    j = parse(CONVERSATIONS_OFFER)
    assert j.action is Action.SESSION_INITIATE and j.initiator is None
    [c] = j.contents
    assert isinstance(c.description, FileTransferDescription)
    f = c.description.file
    assert (f.name, f.size, f.media_type) == ("IMG_1.jpg", 204800, "image/jpeg")
    assert c.transport == IbbTransport("ibb-1", 8192)


def test_we_send_both_media_type_spellings_and_initiator() -> None:
    j = parse(CONVERSATIONS_OFFER)
    from dataclasses import replace

    out = ET.tostring(encode_jingle(replace(j, initiator="a@b/c"))).decode()
    assert "<ns1:media-type>image/jpeg" in out.replace("ns0:", "ns1:") or "media-type" in out
    assert "mediaType" in out and "initiator=\"a@b/c\"" in out


def test_conversations_checksum_without_creator() -> None:
    digest = bytes(range(32))
    j = parse(f"""<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>
      <checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' name='0'><file>
        <hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>{base64.b64encode(bytes(20)).decode()}</hash>
        <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>{base64.b64encode(digest).decode()}</hash>
      </file></checksum></jingle>""")
    assert isinstance(j.info, Checksum) and j.info.creator is None and j.info.name == "0"
    assert dict(j.info.file.hashes)["sha-256"] == digest


def test_reason_with_text_and_app_condition_round_trip() -> None:
    j = parse("""<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'>
      <reason><media-error/><text>too big</text>
      <file-too-large xmlns='urn:xmpp:jingle:apps:file-transfer:errors:0'/></reason></jingle>""")
    assert j.reason is not None
    assert (j.reason.condition, j.reason.text, j.reason.app_condition) == (
        Reason.MEDIA_ERROR, "too big", "file-too-large")
    again = parse_jingle(ET.fromstring(ET.tostring(encode_jingle(j))))
    assert again == j


def test_range_and_hash_used_round_trip() -> None:
    j = parse("""<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'>
      <content creator='initiator' name='f'>
      <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>
        <name>a</name><size>10</size><range offset='270336'/>
        <hash-used xmlns='urn:xmpp:hashes:2' algo='blake2b-512'/></file></description>
      <transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='i'/></content></jingle>""")
    [c] = j.contents
    assert c.senders is None and c.creator is Role.INITIATOR
    assert isinstance(c.description, FileTransferDescription)
    f = c.description.file
    assert f.range is not None and f.range.offset == 270336
    assert f.hash_used == ("blake2b-512",)
    assert parse_jingle(ET.fromstring(ET.tostring(encode_jingle(j)))) == j


@pytest.mark.parametrize("text", [
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-explode' sid='s'/>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-info'/>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'>"
    "<content creator='nobody' name='c'/></jingle>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content"
    " creator='initiator' name='c'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>"
    "<file><size>-5</size></file></description></content></jingle>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content"
    " creator='initiator' name='c'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>"
    "<file><size>12</size><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>!!notb64</hash>"
    "</file></description></content></jingle>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content"
    " creator='initiator' name='c'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>"
    "<file/><file/></description></content></jingle>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'><content"
    " creator='initiator' name='c'><transport xmlns='urn:xmpp:jingle:transports:ibb:1'"
    " sid='x' block-size='70000'/></content></jingle>",
    "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'><content"
    " creator='initiator' name='c'/><content creator='initiator' name='c'/></jingle>",
])
def test_malformed_is_bad_request(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        parse(text)
    assert err.value.condition == "bad-request"


# ------------------------------------------- offers every client accepts (docs/interop.md §11)

FT_NS = "urn:xmpp:jingle:apps:file-transfer:5"
HASHES_NS = "urn:xmpp:hashes:2"


def our_offer_xml() -> ET.Element:
    """An offer built the way jinglefs.client builds one, encoded."""
    from datetime import UTC, datetime

    from jinglefs.jingle.model import Content, FileDesc, Jingle, Range

    desc = FileDesc(name="report.pdf", size=1234, media_type="application/pdf",
                    date=datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
                    desc="the report", hash_used=("sha-256",), range=Range())
    return encode_jingle(Jingle(Action.SESSION_INITIATE, "s1", initiator="a@b/c", contents=(
        Content(Role.INITIATOR, "0", Role.INITIATOR, FileTransferDescription(desc),
                IbbTransport("i1", 4096)),)))


def test_our_offer_has_what_every_receiver_needs_and_nothing_that_breaks_one() -> None:
    el = our_offer_xml()
    [content] = el
    assert content.get("senders") == "initiator"  # Psi needs it (interop §6.2)
    [file_el] = content.find(f"{{{FT_NS}}}description") or []
    children = [(child.tag.split("}")[1], (child.text or "").strip(), dict(child.attrib))
                for child in file_el]
    # name and size (Conversations, Dino); both media-type spellings; a plain XEP-0082
    # date without fractions or an offset (Psi); one <desc/>; <hash-used algo='sha-256'/>
    # and no <hash> value (Libervia); <range/> (ranged transfers).
    assert children == [
        ("date", "2024-05-01T10:00:00Z", {}),
        ("desc", "the report", {}),
        ("media-type", "application/pdf", {}),
        ("mediaType", "application/pdf", {}),
        ("name", "report.pdf", {}),
        ("size", "1234", {}),
        ("range", "", {}),
        ("hash-used", "", {"algo": "sha-256"}),
    ]
    assert file_el.find(f"{{{HASHES_NS}}}hash-used") is not None
    assert file_el.find(f"{{{HASHES_NS}}}hash") is None


def test_our_checksum_names_its_content_and_creator_with_the_exact_algo_name() -> None:
    from jinglefs.jingle.model import FileDesc, Jingle

    digest = bytes(range(32))
    el = encode_jingle(Jingle(Action.SESSION_INFO, "s1", info=Checksum(
        Role.INITIATOR, "0", FileDesc(hashes=(("sha-256", digest),)))))
    [checksum] = el
    assert checksum.tag == f"{{{FT_NS}}}checksum"
    assert (checksum.get("creator"), checksum.get("name")) == ("initiator", "0")
    [h] = checksum.iter(f"{{{HASHES_NS}}}hash")
    assert h.get("algo") == "sha-256" and base64.b64decode(h.text or "") == digest


def offer_with_file(file_xml: str) -> FileTransferDescription:
    j = parse(f"""<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'>
      <content creator='initiator' name='c' senders='initiator'>
      <description xmlns='{FT_NS}'><file>{file_xml}</file></description>
      <transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='i' block-size='4096'/>
      </content></jingle>""")
    [c] = j.contents
    assert isinstance(c.description, FileTransferDescription)
    return c.description


def test_gajim_offer_with_its_date_empty_desc_and_hash() -> None:
    """Gajim 1.9.5 (interop §5.1): date = aware ISO with Z appended, empty <desc/>."""
    digest = bytes(range(64))
    f = offer_with_file(f"""<name>a.txt</name><date>2024-05-01T10:00:00.123456+00:00Z</date>
        <size>5</size><hash xmlns='{HASHES_NS}' algo='sha-512'>
        {base64.b64encode(digest).decode()}</hash><desc/>""").file
    assert (f.name, f.size, f.desc) == ("a.txt", 5, "")
    assert f.date is not None and f.date.isoformat() == "2024-05-01T10:00:00.123456+00:00"
    assert f.hashes == (("sha-512", digest),)


@pytest.mark.parametrize("date", ["yesterday", "2024-13-45T99:00:00Z", "1714557600",
                                  "2024-05-01T10:00:00+00:00+01:00"])
def test_a_malformed_date_is_ignored_never_a_rejection(date: str) -> None:
    f = offer_with_file(f"<name>a</name><size>1</size><date>{date}</date>").file
    assert (f.name, f.size, f.date) == ("a", 1, None)


def test_psi_and_libervia_offers_with_hash_used_media_type_desc_and_range() -> None:
    f = offer_with_file(f"""<date>2024-05-01T10:00:00Z</date><desc>first</desc>
        <desc xml:lang='fr'>second</desc><media-type>text/plain</media-type>
        <name>b.txt</name><size>7</size><range/>
        <hash-used xmlns='{HASHES_NS}' algo='sha-256'/>""").file
    assert (f.name, f.size, f.media_type, f.desc) == ("b.txt", 7, "text/plain", "first")
    assert f.hash_used == ("sha-256",) and f.hashes == () and f.range is not None


def test_an_empty_hash_names_the_algorithm_only() -> None:
    """An empty <hash algo/> carries no digest: it must not become an empty expected
    value (which no file would match), only an announcement like <hash-used/>."""
    f = offer_with_file(f"<name>c</name><size>3</size><hash xmlns='{HASHES_NS}' "
                        "algo='sha-256'/>").file
    assert f.hashes == () and f.hash_used == ("sha-256",)


def test_dino_offer_with_name_and_size_only() -> None:
    f = offer_with_file("<name>d.bin</name><size>0</size>").file
    assert (f.name, f.size, f.media_type, f.date, f.hashes, f.hash_used) == \
        ("d.bin", 0, None, None, (), ())


def test_gajim_checksum_without_name_or_creator() -> None:
    digest = bytes(range(32))
    j = parse(f"""<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>
      <checksum xmlns='{FT_NS}'><file><hash xmlns='{HASHES_NS}' algo='sha-256'>
      {base64.b64encode(digest).decode()}</hash></file></checksum></jingle>""")
    assert isinstance(j.info, Checksum)
    assert (j.info.creator, j.info.name, j.info.file.hashes) == \
        (None, None, (("sha-256", digest),))


def test_libervia_checksum_keeps_its_hex_text_for_the_receiver_to_decode() -> None:
    """Libervia 0.8 (interop §7.3): base64 of the hex digest; the codec keeps the bytes as
    sent, jinglefs.receiving.sender_digest turns them into the digest."""
    from jinglefs.receiving import sender_digest

    digest = bytes(range(100, 132))
    value = base64.b64encode(digest.hex().encode()).decode()
    j = parse(f"""<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>
      <checksum xmlns='{FT_NS}' creator='initiator' name='c'><file>
      <hash xmlns='{HASHES_NS}' algo='sha-256'>{value}</hash></file></checksum></jingle>""")
    assert isinstance(j.info, Checksum)
    [(algo, raw)] = j.info.file.hashes
    assert raw == digest.hex().encode()
    assert sender_digest(algo, raw) == digest
    assert sender_digest("sha-256", digest) == digest  # a standard value is left alone
    assert sender_digest("sha-512", digest.hex().encode()) == digest.hex().encode()
