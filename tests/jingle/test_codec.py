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
