"""Scripted test peers shaped like deployed XMPP clients (docs/interop.md): plain slixmpp
clients on a real server that send and answer exactly what each client's source does."""
