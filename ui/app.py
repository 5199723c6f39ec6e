"""``jinglefs-gui``: start the desktop app (one instance per user)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import APP_ID, APP_NAME

logger = logging.getLogger(__name__)


def _version() -> str:
    from jinglefs import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jinglefs-gui",
        description="Send files directly to your XMPP contacts: drag a file onto a contact. "
                    "Incoming files are offered in an accept dialog; the app keeps "
                    "receiving from the system tray when its window is closed.",
        epilog="The command-line tool is `jinglefs` (see `jinglefs --help`).")
    parser.add_argument("--version", action="version", version=f"jinglefs-gui {_version()}")
    parser.add_argument("--hidden", action="store_true",
                        help="start in the system tray without showing the window")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="files to send (handed to the running instance)")
    return parser


@dataclass
class Services:
    """What the app is built from; tests and the screenshot script pass fakes."""

    connect: object | None = None  # ConnectFn; None = the real jinglefs.client.connect
    store: object | None = None  # AccountStore; None = jinglefs.config + keyring
    state_dir: Path | None = None  # where history and preferences go
    instance_key: str | None = None
    #: Quit after this many seconds (smoke tests).
    quit_after: float | None = None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import qasync  # noqa: F401
        from PySide6.QtWidgets import QApplication  # noqa: F401
    except ImportError as exc:
        sys.stderr.write(f"jinglefs-gui needs the GUI extra: pip install 'jinglefs[gui]' "
                         f"({exc})\n")
        return 2
    return run(args, Services())


def run(args: argparse.Namespace, services: Services) -> int:
    import qasync
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .qtfix import protect_bools
    from .single_instance import SingleInstance

    protect_bools()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(_version())
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(QIcon(str(Path(__file__).parent / "resources" / f"{APP_ID}.svg")))
    app.setQuitOnLastWindowClosed(False)

    instance = SingleInstance(services.instance_key)
    if instance.forward([str(Path(f).absolute()) for f in args.files]):
        sys.stderr.write("jinglefs-gui is already running; the window was brought forward.\n")
        return 0
    instance.listen()
    try:
        return int(qasync.run(_amain(app, args, services, instance)) or 0)
    except RuntimeError as exc:
        # Qt ended its event loop under us (e.g. the X server or the session went away).
        if "Event loop stopped" not in str(exc):
            raise
        logger.warning("the windowing system closed the app")
        return 1
    finally:
        instance.close()


async def _amain(app: object, args: argparse.Namespace, services: Services,
                 instance: object) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QMenu, QSystemTrayIcon

    from .accounts import ConfigAccountStore
    from .bridge import ClientBridge, default_connect
    from .notify import make_notifier
    from .storage import History, Preferences
    from .widgets.main_window import MainWindow

    store = services.store or ConfigAccountStore()
    if services.state_dir is not None:
        state_dir = services.state_dir
    else:
        try:
            state_dir = Path(store.state_dir())  # type: ignore[attr-defined]
        except Exception as exc:
            logger.warning("no state directory (%s); using ~/.local/state/jinglefs", exc)
            state_dir = Path.home() / ".local" / "state" / "jinglefs"
    prefs = Preferences.load(state_dir / "gui-preferences.json")
    if prefs.ensure_resource():  # first start: this install's device name, kept from now on
        try:
            prefs.save()
        except OSError as exc:
            logger.warning("could not save the preferences: %s", exc)
    history = History(state_dir / "gui-history.json")

    tray: QSystemTrayIcon | None = None
    if QSystemTrayIcon.isSystemTrayAvailable():
        tray = QSystemTrayIcon(QIcon(str(Path(__file__).parent / "resources"
                                         / f"{APP_ID}.svg")))
        tray.setToolTip(APP_NAME)
    from jinglefs.api import Settings

    bridge = ClientBridge(services.connect or default_connect,  # type: ignore[arg-type]
                          Settings(encryption=prefs.encryption), resource=prefs.resource)
    notifier = make_notifier(tray)
    window = MainWindow(bridge, store, prefs, history,  # type: ignore[arg-type]
                        notifier=notifier, tray_available=tray is not None)

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def quit_app() -> None:
        if not done.done():
            done.set_result(None)

    # The window's Quit (menu, Ctrl+Q, the tray's Quit below, closing the window without a
    # tray) asks first while transfers run; a signal (logout, Ctrl-C) does not ask.
    window.quitRequested.connect(quit_app)
    instance.messageReceived.connect(window.on_second_instance)  # type: ignore[attr-defined]
    if tray is not None:
        menu = QMenu()
        menu.addAction("Show jinglefs", window.show_and_raise)
        menu.addAction(window.send_file_action)
        menu.addSeparator()
        menu.addAction(window.quit_action)
        tray.setContextMenu(menu)
        tray.activated.connect(
            lambda reason: window.show_and_raise()
            if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
        tray.show()
    loop = asyncio.get_running_loop()
    # Ctrl-C / SIGTERM (logout, systemd) end the app cleanly.  Python runs signal handlers
    # only between bytecodes, so a slow timer gives it a chance while Qt waits for events.
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            signal.signal(sig, lambda _n, _f: loop.call_soon(quit_app))
    wakeup = QTimer()
    wakeup.start(500)
    wakeup.timeout.connect(lambda: None)
    if services.quit_after is not None:
        loop.call_later(services.quit_after, quit_app)

    if not (args.hidden and tray is not None):
        window.show()
    await window.start()
    await done
    wakeup.stop()
    window.hide()
    if tray is not None:
        tray.hide()
    await bridge.aclose()
    await notifier.aclose()
    return 0
