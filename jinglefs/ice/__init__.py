"""ICE with a WebRTC data channel, signalled as Conversations' webrtc-datachannel:1.

Everything about ICE lives here:

* :mod:`.protocol` — pure: the ``<transport/>`` payloads (XEP-0176 candidates, XEP-0320
  fingerprints, XEP-0215 servers);
* :mod:`.channel`  — aioice + aiortc: gathering, checks, DTLS, SCTP, one data channel as a
  byte stream (public API of both only);
* :mod:`._aiortc`  — the fence: every aioice/aiortc internal jinglefs needs, each explained
  (canaries in tests/ice); with :mod:`.channel` the only module that imports them;
* :mod:`.native`   — the same data channel on libdatachannel (aiolibdatachannel), with its
  own small fence at the end; the only module that imports it;
* :mod:`.sdp`      — pure: Jingle payloads <-> the SDP libdatachannel takes;
* :mod:`.backend`  — the interface both implement and which one a session gets;
* :mod:`.probe`    — one STUN binding over UDP: can the native stack relay here?
* :mod:`.servers`  — the XMPP glue: STUN/TURN from our server (XEP-0215);
* :mod:`.negotiator` — the rung: trickle, answer and connect for the session driver.
"""
