"""One app per user: a second launch hands its arguments to the first and exits."""

from __future__ import annotations

import getpass
import hashlib
import json
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from . import APP_ID

logger = logging.getLogger(__name__)


def default_key() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "user"
    digest = hashlib.sha256(f"{APP_ID}:{user}".encode()).hexdigest()[:16]
    return f"jinglefs-gui-{digest}"


class SingleInstance(QObject):
    #: Arguments forwarded by a second launch.
    messageReceived = Signal(list)

    def __init__(self, key: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key or default_key()
        self.server: QLocalServer | None = None

    def forward(self, args: list[str], timeout_ms: int = 1000) -> bool:
        """True when another instance is running and got ``args`` (then we should exit)."""
        sock = QLocalSocket()
        sock.connectToServer(self.key)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(json.dumps(args).encode() + b"\n")
        ok = sock.waitForBytesWritten(timeout_ms)
        sock.disconnectFromServer()
        return ok

    def listen(self) -> bool:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.key):
            # A stale socket left by a crash: nobody answered forward(), so remove it.
            QLocalServer.removeServer(self.key)
            if not server.listen(self.key):
                logger.warning("single-instance socket unavailable: %s", server.errorString())
                return False
        server.newConnection.connect(self._on_connection)
        self.server = server
        return True

    def _on_connection(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            buf = bytearray()

            def read(sock: QLocalSocket = sock, buf: bytearray = buf) -> None:
                buf.extend(bytes(sock.readAll().data()))
                if b"\n" in buf:
                    line = bytes(buf).split(b"\n", 1)[0]
                    try:
                        args = json.loads(line.decode())
                    except ValueError:
                        args = None
                    buf.clear()
                    if isinstance(args, list):
                        self.messageReceived.emit([str(a) for a in args])

            # The socket is a child of the server and goes away with it; the client
            # disconnects after writing.  (No deleteLater: it raced with the server's
            # own cleanup of its children.)
            sock.readyRead.connect(read)
            if sock.bytesAvailable():
                read()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
