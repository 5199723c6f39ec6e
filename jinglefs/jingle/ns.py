"""XML namespaces (docs/protocol.md §2.1)."""

JINGLE = "urn:xmpp:jingle:1"  # XEP-0166
JINGLE_ERRORS = "urn:xmpp:jingle:errors:1"  # XEP-0166 §10
FT = "urn:xmpp:jingle:apps:file-transfer:5"  # XEP-0234
FT_ERRORS = "urn:xmpp:jingle:apps:file-transfer:errors:0"  # XEP-0234 §9
HASHES = "urn:xmpp:hashes:2"  # XEP-0300
HASH_NAMES = "urn:xmpp:hash-function-text-names:"  # XEP-0300 §5 feature prefix
IBB_TRANSPORT = "urn:xmpp:jingle:transports:ibb:1"  # XEP-0261
IBB = "http://jabber.org/protocol/ibb"  # XEP-0047
S5B_TRANSPORT = "urn:xmpp:jingle:transports:s5b:1"  # XEP-0260
BYTESTREAMS = "http://jabber.org/protocol/bytestreams"  # XEP-0065
ICE_UDP = "urn:xmpp:jingle:transports:ice-udp:1"  # XEP-0176
WEBRTC_DC = "urn:xmpp:jingle:transports:webrtc-datachannel:1"  # docs/protocol.md §6.4
DTLS = "urn:xmpp:jingle:apps:dtls:0"  # XEP-0320
EXTDISCO = "urn:xmpp:extdisco:2"  # XEP-0215
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"  # RFC 6120 §8.3
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
