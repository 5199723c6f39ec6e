"""The ``jinglefs`` command: send and receive files, manage accounts, start the GUI.

``main(argv, connect=...)`` returns the exit code instead of exiting, and takes the
connect function so that tests drive the CLI in-process against a fake façade.
Human output (progress, warnings, errors) goes to stderr; ``--json`` events and other
data go to stdout.  Passwords are never taken from the command line.

* :mod:`.parser`     options, their checks, ``--help`` (with :mod:`.exit_codes`)
* :mod:`.send`, :mod:`.receive`, :mod:`.account`   the commands
* :mod:`.output`     human progress on stderr, ``--json`` on stdout
* :mod:`.run`        one command on an event loop: signals, following transfers, summary
* :mod:`.terminal`   whether there is someone to ask, and asking
* logging in (account, password, STUN/TURN) is :mod:`jinglefs.login`, shared with the GUI
"""

from __future__ import annotations

from .command import main
from .exit_codes import EXIT_CODE_TABLE
from .parser import build_parser
from .run import ConnectFn

__all__ = ["main", "build_parser", "ConnectFn", "EXIT_CODE_TABLE"]
