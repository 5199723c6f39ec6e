"""Desktop notifications, and Accept / Decline buttons on an offer's notification.

Plain notifications go out as they always did: ``notify-send`` (freedesktop) where present,
else the tray icon, else the log.  Where the desktop's notification server shows buttons,
an offer's notification also carries Accept and Decline (Desktop Notifications
Specification 1.2, ``org.freedesktop.Notifications``: ``GetCapabilities`` lists
``"actions"``; ``Notify`` takes the actions as a flat list of key and label pairs; the
server's ``ActionInvoked(id, key)`` signal tells which the user pressed, and
``NotificationClosed(id, reason)`` that the notification went away).

:class:`NotificationServer` is that interface as the app uses it.
:class:`SessionBusNotifications` speaks it on the session bus; tests pass a fake.  The bus
is reached with jeepney (a pure-Python D-Bus client that keyring installs on Linux), not
QtDBus: PySide6 marshals a Python int as int32 or uint16, never as the uint32 that
``Notify`` and ``CloseNotification`` take, and strict servers (GDBus, Qt) refuse the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import shutil
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import QSystemTrayIcon

from . import APP_ID, APP_NAME
from .aio import spawn

logger = logging.getLogger(__name__)

#: GetCapabilities: the server shows the actions given to Notify.
ACTIONS_CAPABILITY = "actions"
#: GetCapabilities: the server reads markup in the body (so the body must be escaped).
MARKUP_CAPABILITY = "body-markup"
#: The action a server invokes when the notification itself is clicked.
DEFAULT_ACTION = "default"
ACCEPT_ACTION = "accept"
DECLINE_ACTION = "decline"

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"


class Notifier(Protocol):
    def notify(self, title: str, body: str) -> None: ...


@runtime_checkable
class ActionNotifier(Protocol):
    """A notifier that can also ask (notification buttons)."""

    @property
    def supports_actions(self) -> bool: ...

    def notify(self, title: str, body: str) -> None: ...

    def ask(self, title: str, body: str, actions: Sequence[tuple[str, str]],
            on_action: Callable[[str], None]) -> Prompt | None: ...


class NotificationServer(Protocol):
    """``org.freedesktop.Notifications`` as the app uses it (the session bus, or a fake)."""

    async def get_capabilities(self) -> list[str]: ...

    async def notify(self, summary: str, body: str, actions: Sequence[str]) -> int:
        """Show a notification; ``actions`` is the flat key, label, key, label… list.
        Returns the server's id for it (never 0)."""
        ...

    async def close_notification(self, notification_id: int) -> None: ...

    def listen(self, action_invoked: Callable[[int, str], None],
               notification_closed: Callable[[int, int], None]) -> None:
        """Call ``action_invoked(id, key)`` and ``notification_closed(id, reason)`` for the
        server's ``ActionInvoked`` and ``NotificationClosed`` signals."""
        ...

    async def aclose(self) -> None:
        """Stop listening (the app quits)."""
        ...


class NullNotifier:
    def notify(self, title: str, body: str) -> None:
        logger.info("notification: %s: %s", title, body)


class TrayNotifier:
    def __init__(self, tray: QSystemTrayIcon) -> None:
        self.tray = tray

    def notify(self, title: str, body: str) -> None:
        self.tray.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 8000)


class NotifySend:
    """freedesktop notifications through ``notify-send``, started detached (never waits)."""

    def __init__(self, program: str) -> None:
        self.program = program

    def notify(self, title: str, body: str) -> None:
        # Notification servers may read the body as markup: escape it.
        QProcess.startDetached(self.program, [f"--app-name={APP_NAME}", f"--icon={APP_ID}",
                                              "--", title, html.escape(body)])


class Prompt:
    """One notification with buttons.  ``on_action`` is called at most once, with the key
    of the button pressed; :meth:`close` withdraws the notification (answered elsewhere)."""

    def __init__(self, owner: DesktopNotifier, keys: frozenset[str],
                 on_action: Callable[[str], None]) -> None:
        self._owner = owner
        self.keys = keys
        self.on_action = on_action
        #: the server's id, once it answered Notify
        self.id: int | None = None
        #: answered, closed by the server, or withdrawn
        self.done = False

    def close(self) -> None:
        if self.done:
            return
        self.done = True
        if self.id is not None:
            self._owner._withdraw(self.id)


class DesktopNotifier:
    """Plain notifications through ``plain`` (as before); offers with buttons through the
    notification server, when it advertises the ``actions`` capability."""

    def __init__(self, server: NotificationServer, plain: Notifier) -> None:
        self.server = server
        self.plain = plain
        #: GetCapabilities' answer; None until it came (no buttons until then)
        self.capabilities: frozenset[str] | None = None
        self._prompts: dict[int, Prompt] = {}
        server.listen(self._action_invoked, self._closed)

    async def start(self) -> None:
        """Ask the server what it can show (once)."""
        try:
            self.capabilities = frozenset(await self.server.get_capabilities())
        except Exception as exc:
            logger.info("no notification buttons: %s", exc)
            self.capabilities = frozenset()

    @property
    def supports_actions(self) -> bool:
        return self.capabilities is not None and ACTIONS_CAPABILITY in self.capabilities

    async def aclose(self) -> None:
        """Withdraw the notifications still asking, and leave the bus (the app quits)."""
        for nid in list(self._prompts):
            self._prompts.pop(nid).done = True
            await self._close(nid)
        try:
            await self.server.aclose()
        except Exception as exc:
            logger.debug("closing the notification server: %s", exc)

    def notify(self, title: str, body: str) -> None:
        self.plain.notify(title, body)

    def ask(self, title: str, body: str, actions: Sequence[tuple[str, str]],
            on_action: Callable[[str], None]) -> Prompt | None:
        """Show a notification with these (key, label) buttons; None when the server shows
        no buttons (the caller notifies plainly then)."""
        if not self.supports_actions:
            return None
        keys = [key for key, _label in actions]
        if len(set(keys)) != len(keys) or not all(keys):
            raise ValueError(f"action keys must be unique and non-empty: {keys}")
        prompt = Prompt(self, frozenset(keys), on_action)
        flat = [part for pair in actions for part in pair]
        spawn(self._show(prompt, title, body, flat))
        return prompt

    async def _show(self, prompt: Prompt, title: str, body: str, flat: list[str]) -> None:
        assert self.capabilities is not None
        shown = html.escape(body) if MARKUP_CAPABILITY in self.capabilities else body
        try:
            nid = await self.server.notify(title, shown, flat)
        except Exception as exc:
            logger.warning("the notification server refused a notification: %s", exc)
            if not prompt.done:
                prompt.done = True
                self.plain.notify(title, body)
            return
        prompt.id = nid
        if prompt.done:  # answered in the app before the server replied
            self._withdraw(nid)
        else:
            self._prompts[nid] = prompt

    def _withdraw(self, nid: int) -> None:
        self._prompts.pop(nid, None)
        spawn(self._close(nid))

    async def _close(self, nid: int) -> None:
        try:
            await self.server.close_notification(nid)
        except Exception as exc:  # already gone: the spec answers with an error
            logger.debug("closing notification %s: %s", nid, exc)

    def _action_invoked(self, nid: int, key: str) -> None:
        prompt = self._prompts.get(nid)
        if prompt is None or prompt.done or key not in prompt.keys:
            return  # another application's notification, or not one of ours
        del self._prompts[nid]
        prompt.done = True
        prompt.on_action(key)

    def _closed(self, nid: int, _reason: int) -> None:
        prompt = self._prompts.pop(nid, None)
        if prompt is not None:
            prompt.done = True


class SessionBusNotifications:
    """:class:`NotificationServer` on the D-Bus session bus (jeepney's asyncio router)."""

    def __init__(self, conn: Any, router: Any) -> None:
        from jeepney import DBusAddress, MatchRule

        self._conn = conn
        self._router = router
        self._address = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface=INTERFACE)
        self._rule = MatchRule(type="signal", interface=INTERFACE, path=OBJECT_PATH)
        self._listener: Any = None

    @classmethod
    async def open(cls) -> SessionBusNotifications:
        """Connect to the session bus (raises when there is none)."""
        from jeepney import message_bus
        from jeepney.io.asyncio import DBusRouter, open_dbus_connection

        conn = await open_dbus_connection("SESSION")
        server = cls(conn, DBusRouter(conn))
        await server._call(message_bus.AddMatch(server._rule))
        return server

    async def _call(self, message: Any) -> tuple[Any, ...]:
        from jeepney import MessageType

        reply = await self._router.send_and_get_reply(message)
        if reply.header.message_type == MessageType.error:
            raise OSError(f"D-Bus error: {reply.body[0] if reply.body else reply.header}")
        return tuple(reply.body)

    def _method(self, name: str, signature: str | None = None, body: tuple[Any, ...] = ()
                ) -> Any:
        from jeepney import new_method_call

        return new_method_call(self._address, name, signature, body)

    async def get_capabilities(self) -> list[str]:
        (caps,) = await self._call(self._method("GetCapabilities"))
        return [str(c) for c in caps]

    async def notify(self, summary: str, body: str, actions: Sequence[str]) -> int:
        hints = {"desktop-entry": ("s", APP_ID)}
        (nid,) = await self._call(self._method(
            "Notify", "susssasa{sv}i",
            (APP_NAME, 0, APP_ID, summary, body, list(actions), hints, -1)))
        return int(nid)

    async def close_notification(self, notification_id: int) -> None:
        await self._call(self._method("CloseNotification", "u", (notification_id,)))

    async def aclose(self) -> None:
        """Stop listening and leave the bus."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._router.__aexit__(None, None, None)
        await self._conn.close()

    def listen(self, action_invoked: Callable[[int, str], None],
               notification_closed: Callable[[int, int], None]) -> None:
        if self._listener is None:
            self._listener = spawn(self._signals(action_invoked, notification_closed))

    async def _signals(self, action_invoked: Callable[[int, str], None],
                       notification_closed: Callable[[int, int], None]) -> None:
        from jeepney import HeaderFields

        queue: asyncio.Queue[Any] = asyncio.Queue(100)
        with self._router.filter(self._rule, queue=queue):
            while True:
                msg = await queue.get()
                member = msg.header.fields.get(HeaderFields.member)
                with contextlib.suppress(Exception):  # one bad signal does not stop us
                    if member == "ActionInvoked":
                        action_invoked(int(msg.body[0]), str(msg.body[1]))
                    elif member == "NotificationClosed":
                        notification_closed(int(msg.body[0]), int(msg.body[1]))


def _plain_notifier(tray: QSystemTrayIcon | None) -> Notifier:
    program = shutil.which("notify-send")
    if program:
        return NotifySend(program)
    if tray is not None:
        return TrayNotifier(tray)
    return NullNotifier()


def make_notifier(tray: QSystemTrayIcon | None) -> DesktopNotifier:
    """Today's notifier; on a desktop with a session bus, one that can also show buttons
    (it finds out in the background whether the server shows them)."""
    plain = _plain_notifier(tray)
    notifier = DesktopNotifier(_LazySessionBus(), plain)
    spawn(notifier.start())
    return notifier


class _LazySessionBus:
    """:class:`SessionBusNotifications`, connected on first use (start-up never waits
    for the bus, and a desktop without one just gets no buttons)."""

    def __init__(self) -> None:
        self._bus: SessionBusNotifications | None = None
        self._listeners: tuple[Callable[[int, str], None],
                               Callable[[int, int], None]] | None = None

    async def _get(self) -> SessionBusNotifications:
        if self._bus is None:
            self._bus = await SessionBusNotifications.open()
            if self._listeners is not None:
                self._bus.listen(*self._listeners)
        return self._bus

    async def get_capabilities(self) -> list[str]:
        return await (await self._get()).get_capabilities()

    async def notify(self, summary: str, body: str, actions: Sequence[str]) -> int:
        return await (await self._get()).notify(summary, body, actions)

    async def close_notification(self, notification_id: int) -> None:
        await (await self._get()).close_notification(notification_id)

    async def aclose(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            await bus.aclose()

    def listen(self, action_invoked: Callable[[int, str], None],
               notification_closed: Callable[[int, int], None]) -> None:
        self._listeners = (action_invoked, notification_closed)
        if self._bus is not None:
            self._bus.listen(action_invoked, notification_closed)
