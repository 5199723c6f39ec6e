"""SOCKS5 Bytestreams (XEP-0065) as a Jingle transport (XEP-0260): direct, then proxy.

Everything about SOCKS5 lives here:

* :mod:`.protocol` — pure: candidates, priorities, DST.ADDR, the nomination state machine;
* :mod:`.wire`     — pure: the RFC 1928 greeting, request and reply bytes;
* :mod:`.network`  — asyncio: our listener for direct candidates, dialling, TCP streams;
* :mod:`.proxy`    — the XMPP glue: proxy65 discovery and activation (XEP-0065 §4, §6.3.5);
* :mod:`.negotiator` — the rung: candidate exchange and connect for the session driver.
"""
