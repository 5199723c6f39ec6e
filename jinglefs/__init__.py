"""jinglefs: send files directly between XMPP contacts with Jingle File Transfer."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
