"""Jingle Message Initiation (XEP-0353) for file transfer: ``protocol`` is the pure part
(elements and decisions), ``service`` the slixmpp glue (docs/protocol.md §11)."""
