"""Transport negotiators: one per rung of the ladder (ICE → SOCKS5 → IBB).

Each turns Jingle transport payloads into a connected
:class:`~jinglefs.streams.ByteStream`, behind the one :class:`Negotiator` interface,
so the session driver never knows which transport it is running.
"""
