"""``<jingle/>`` XML <-> :class:`~jinglefs.jingle.model.Jingle`.  Pure: never sends anything.

Parsing is strict where a mistake would corrupt a transfer (sizes, hashes, names of
contents) and lenient where deployed clients differ from the XEPs (docs/protocol.md §4,
§5, §15): missing ``initiator``/``responder``, ``mediaType`` instead of
``media-type``, missing ``senders``, checksums without ``creator``.
Malformed input raises :class:`RemoteProtocolError` with ``condition="bad-request"``.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from ..errors import RemoteProtocolError
from ..jet.protocol import (
    MalformedSecurity,
    Security,
    encode_security,
    is_security,
    parse_security,
)
from . import ns
from .model import (
    Action,
    Checksum,
    Content,
    Description,
    FileDesc,
    FileTransferDescription,
    Jingle,
    Range,
    Reason,
    ReasonInfo,
    Received,
    Role,
    SessionInfoPayload,
    UnknownDescription,
    UnknownInfo,
)
from .transport import parse_transport

# Names of content / sid are NMTOKEN-ish; cap lengths so a hostile peer cannot make us
# keep megabytes of identifiers.
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 4096
MAX_CONTENTS = 1000

_ACTIONS = {a.value: a for a in Action}
_REASONS = {r.value: r for r in Reason}


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        uri, _, name = tag[1:].partition("}")
        return uri, name
    return "", tag


def _bad(msg: str) -> RemoteProtocolError:
    return RemoteProtocolError(msg, condition="bad-request")


# --------------------------------------------------------------------------- parsing


def parse_jingle(el: ET.Element) -> Jingle:
    """Parse a ``<jingle xmlns='urn:xmpp:jingle:1'>`` element (XEP-0166 §7)."""
    if el.tag != _q(ns.JINGLE, "jingle"):
        raise _bad("not a jingle element")
    action_name = el.get("action")
    if action_name is None or action_name not in _ACTIONS:
        # XEP-0166 §7.2: an unknown action is answered with bad-request.
        raise _bad(f"unknown jingle action {action_name!r}")
    action = _ACTIONS[action_name]
    sid = el.get("sid")
    if not sid or len(sid) > MAX_ID_LENGTH:
        raise _bad("jingle element without a usable sid")

    contents: list[Content] = []
    reason: ReasonInfo | None = None
    info: SessionInfoPayload | None = None
    for child in el:
        uri, name = _local(child.tag)
        if uri == ns.JINGLE and name == "content":
            if len(contents) >= MAX_CONTENTS:
                raise _bad("too many contents")
            contents.append(_parse_content(child))
        elif uri == ns.JINGLE and name == "reason":
            reason = _parse_reason(child)
        elif action is Action.SESSION_INFO and info is None:
            info = _parse_session_info(child)
        # Anything else (e.g. Conversations' <group xmlns='urn:xmpp:jingle:apps:grouping:0'>)
        # is an extension we may ignore (docs/protocol.md §6.4).
    seen: set[tuple[Role, str]] = set()
    for c in contents:
        if c.key in seen:
            raise _bad(f"duplicate content {c.name!r}")
        seen.add(c.key)
    return Jingle(action=action, sid=sid, initiator=el.get("initiator"),
                  responder=el.get("responder"), contents=tuple(contents), reason=reason,
                  info=info)


def _parse_role(value: str | None, what: str) -> Role:
    if value == "initiator":
        return Role.INITIATOR
    if value == "responder":
        return Role.RESPONDER
    raise _bad(f"{what} must be initiator or responder, not {value!r}")


def _parse_content(el: ET.Element) -> Content:
    name = el.get("name")
    if not name or len(name) > MAX_ID_LENGTH:
        raise _bad("content without a usable name")
    creator = _parse_role(el.get("creator"), "content creator")
    senders_attr = el.get("senders")
    senders: Role | None
    if senders_attr is None or senders_attr in ("both", "none"):
        # XEP-0234 §4.1 leaves both/none undefined for files; treat as absent
        # (docs/protocol.md §5.2).
        senders = None
    else:
        senders = _parse_role(senders_attr, "content senders")
    description: Description | None = None
    transport = None
    security: Security | None = None
    for child in el:
        uri, local = _local(child.tag)
        if local == "description":
            if description is not None:
                raise _bad("content with more than one description")
            description = (FileTransferDescription(_parse_ft_description(child))
                           if uri == ns.FT else UnknownDescription(uri))
        elif local == "transport":
            if transport is not None:
                raise _bad("content with more than one transport")
            transport = parse_transport(child)
        elif is_security(child):
            # XEP-0391 §4.1: JET's <security/> in the content (docs/interop.md §9)
            if security is not None:
                raise _bad("content with more than one security element")
            try:
                security = parse_security(child)
            except MalformedSecurity as e:
                raise _bad(str(e)) from None
    return Content(creator=creator, name=name, senders=senders, description=description,
                   transport=transport, disposition=el.get("disposition", "session"),
                   security=security)


def _parse_ft_description(el: ET.Element) -> FileDesc:
    files = el.findall(_q(ns.FT, "file"))
    if len(files) != 1:
        # XEP-0234 §5: exactly one <file/> per description (Dino enforces it too).
        raise _bad("file-transfer description must hold exactly one <file/>")
    return parse_file(files[0])


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()


def _nonneg_int(value: str | None, what: str) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise _bad(f"{what} is not a number: {value!r}") from None
    if number < 0 or number >= 1 << 63:
        raise _bad(f"{what} out of range: {number}")
    return number


def _parse_hash(el: ET.Element) -> tuple[str, bytes]:
    algo = el.get("algo")
    if not algo:
        raise _bad("hash without algo")
    text = "".join(_text(el).split())
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"hash value for {algo} is not base64") from None
    return algo, value


def parse_file(el: ET.Element) -> FileDesc:
    """Parse an XEP-0234 §5 ``<file/>`` (ft:5 namespace, hashes in urn:xmpp:hashes:2)."""
    name = size = media_type = date = desc = None
    hashes: list[tuple[str, bytes]] = []
    hash_used: list[str] = []
    range_: Range | None = None
    for child in el:
        uri, local = _local(child.tag)
        if uri == ns.FT:
            if local == "name":
                name = _text(child)
                if len(name) > MAX_NAME_LENGTH:
                    raise _bad("file name too long")
            elif local == "size":
                size = _nonneg_int(_text(child), "file size")
            elif local in ("media-type", "mediaType"):
                # Conversations writes <mediaType> (docs/protocol.md §5.1); accept both.
                media_type = media_type or _text(child) or None
            elif local == "date":
                date = _parse_date(_text(child))
            elif local == "desc":
                desc = desc or _text(child)
            elif local == "range":
                range_ = _parse_range(child)
        elif uri == ns.HASHES and local == "hash":
            algo, value = _parse_hash(child)
            if value:
                hashes.append((algo, value))
            else:
                # An empty <hash/> names the algorithm only, like <hash-used/>
                # (XEP-0300 §2 puts the digest in the element's text).
                hash_used.append(algo)
        elif uri == ns.HASHES and local == "hash-used":
            if child.get("algo"):
                hash_used.append(child.get("algo", ""))
    return FileDesc(name=name, size=size, media_type=media_type, date=date, desc=desc,
                    hashes=tuple(hashes), hash_used=tuple(hash_used), range=range_)


def _parse_range(el: ET.Element) -> Range:
    offset = _nonneg_int(el.get("offset", "0"), "range offset")
    length = el.get("length")
    hashes = tuple(_parse_hash(h) for h in el.findall(_q(ns.HASHES, "hash")))
    return Range(offset=offset,
                 length=None if length is None else _nonneg_int(length, "range length"),
                 hashes=hashes)


def _parse_date(text: str) -> datetime | None:
    """XEP-0082 DateTime; an unparsable date is dropped (it is informational only)."""
    if not text:
        return None
    if text.endswith(("Z", "z")) and len(text) > 6 and text[-7] in "+-" and text[-4] == ":":
        # Gajim 1.x appends Z to a date that has an offset already:
        # 2024-05-01T10:00:00.123456+00:00Z (docs/interop.md §5.1).
        text = text[:-1]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_reason(el: ET.Element) -> ReasonInfo:
    condition: Reason | None = None
    text = app = None
    for child in el:
        uri, local = _local(child.tag)
        if uri == ns.JINGLE and local == "text":
            text = (child.text or "")[:1000]
        elif uri == ns.JINGLE and local in _REASONS and condition is None:
            condition = _REASONS[local]
        elif uri in (ns.FT_ERRORS,):
            app = local
    # A reason without a known condition is not fatal; general-error says "something".
    return ReasonInfo(condition or Reason.GENERAL_ERROR, text, app)


def _parse_session_info(el: ET.Element) -> SessionInfoPayload:
    uri, local = _local(el.tag)
    if uri == ns.FT and local in ("checksum", "received"):
        creator_attr = el.get("creator")
        # Conversations sends checksum with only `name`, no `creator` (docs/protocol.md §5.4).
        creator = None if creator_attr is None else _parse_role(creator_attr, "creator")
        name = el.get("name")
        if local == "received":
            return Received(creator, name)
        file_el = el.find(_q(ns.FT, "file"))
        if file_el is None:
            raise _bad("checksum without <file/>")
        return Checksum(creator, name, parse_file(file_el))
    return UnknownInfo(el.tag)


# --------------------------------------------------------------------------- encoding


def encode_jingle(j: Jingle) -> ET.Element:
    el = ET.Element(_q(ns.JINGLE, "jingle"), {"action": j.action.value, "sid": j.sid})
    # XEP-0166 §7.1: initiator SHOULD only be on session-initiate, responder on session-accept.
    if j.initiator and j.action is Action.SESSION_INITIATE:
        el.set("initiator", j.initiator)
    if j.responder and j.action is Action.SESSION_ACCEPT:
        el.set("responder", j.responder)
    for c in j.contents:
        el.append(_encode_content(c))
    if j.reason is not None:
        el.append(encode_reason(j.reason))
    if j.info is not None:
        el.append(_encode_session_info(j.info))
    return el


def _encode_content(c: Content) -> ET.Element:
    el = ET.Element(_q(ns.JINGLE, "content"), {"creator": c.creator.value, "name": c.name})
    if c.senders is not None:
        el.set("senders", c.senders.value)
    if c.disposition != "session":
        el.set("disposition", c.disposition)
    if isinstance(c.description, FileTransferDescription):
        desc = ET.SubElement(el, _q(ns.FT, "description"))
        desc.append(encode_file(c.description.file))
    elif isinstance(c.description, UnknownDescription):
        ET.SubElement(el, _q(c.description.namespace, "description"))
    if c.transport is not None:
        el.append(c.transport.to_element())
    if c.security is not None:
        el.append(encode_security(c.security, c.name))
    return el


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def encode_file(f: FileDesc, *, conversations_media_type: bool = True) -> ET.Element:
    el = ET.Element(_q(ns.FT, "file"))
    if f.date is not None:
        ET.SubElement(el, _q(ns.FT, "date")).text = (
            f.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if f.desc:
        ET.SubElement(el, _q(ns.FT, "desc")).text = f.desc
    if f.media_type:
        ET.SubElement(el, _q(ns.FT, "media-type")).text = f.media_type
        if conversations_media_type:
            # Conversations reads only the camelCase spelling (docs/protocol.md §5.1, §15.3).
            ET.SubElement(el, _q(ns.FT, "mediaType")).text = f.media_type
    if f.name is not None:
        ET.SubElement(el, _q(ns.FT, "name")).text = f.name
    if f.size is not None:
        ET.SubElement(el, _q(ns.FT, "size")).text = str(f.size)
    if f.range is not None:
        r = ET.SubElement(el, _q(ns.FT, "range"))
        if f.range.offset:
            r.set("offset", str(f.range.offset))
        if f.range.length is not None:
            r.set("length", str(f.range.length))
        for algo, value in f.range.hashes:
            ET.SubElement(r, _q(ns.HASHES, "hash"), {"algo": algo}).text = _b64(value)
    for algo, value in f.hashes:
        ET.SubElement(el, _q(ns.HASHES, "hash"), {"algo": algo}).text = _b64(value)
    for algo in f.hash_used:
        ET.SubElement(el, _q(ns.HASHES, "hash-used"), {"algo": algo})
    return el


def encode_reason(r: ReasonInfo) -> ET.Element:
    el = ET.Element(_q(ns.JINGLE, "reason"))
    ET.SubElement(el, _q(ns.JINGLE, r.condition.value))
    if r.text:
        ET.SubElement(el, _q(ns.JINGLE, "text")).text = r.text
    if r.app_condition:
        ET.SubElement(el, _q(ns.FT_ERRORS, r.app_condition))
    return el


def _encode_session_info(info: SessionInfoPayload) -> ET.Element:
    if isinstance(info, UnknownInfo):
        return ET.Element(info.tag)
    tag = "checksum" if isinstance(info, Checksum) else "received"
    el = ET.Element(_q(ns.FT, tag))
    if info.creator is not None:
        el.set("creator", info.creator.value)
    if info.name is not None:
        el.set("name", info.name)
    if isinstance(info, Checksum):
        el.append(encode_file(info.file, conversations_media_type=False))
    return el
