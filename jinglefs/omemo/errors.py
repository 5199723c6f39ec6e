"""What goes wrong with our OMEMO device, in the words people see."""

from __future__ import annotations

from ..errors import JingleFSError

__all__ = ["OmemoError"]


class OmemoError(JingleFSError):
    """An OMEMO problem (kind ``failed``, exit 1); its text is the whole message."""

    @property
    def user_message(self) -> str:
        return str(self)
