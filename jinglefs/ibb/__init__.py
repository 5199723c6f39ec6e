"""In-Band Bytestreams (XEP-0047) as a Jingle transport (XEP-0261): the last rung.

Everything about IBB lives here, from the wire rules up to the ladder:

* :mod:`.protocol` — pure: the ``<transport/>`` payload, block sizes, ``seq`` rules, base64;
* :mod:`.stream`   — the byte stream over a window of outstanding IQs (no slixmpp);
* :mod:`.service`  — the XMPP glue: ``<open/>``/``<data/>``/``<close/>`` over slixmpp;
* :mod:`.negotiator` — the rung: offer, answer and connect for the session driver.
"""
