"""`python -m jinglefs` as its own process where no XMPP server is needed."""

from __future__ import annotations

import socket
from pathlib import Path

from jinglefs import errors
from tests.e2e.cli_run import bare_cli


def test_unreachable_server_exit_code(tmp_path: Path) -> None:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        pw = tmp_path / "p.pw"
        pw.write_text("x\n")
        proc = bare_cli(tmp_path, "send", "--account", "alice@jinglefs.test", "--server",
                        f"127.0.0.1:{port}", "--password-file", str(pw), "--no-input",
                        __file__, "bob@jinglefs.test")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.EXIT_CONNECT, err
