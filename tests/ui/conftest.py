"""GUI tests: offscreen Qt, a qasync loop per test, the fake façade from tests/fakes.py.

``jinglefs_ui`` is the ``ui/`` folder, loaded by :mod:`tests.ui.ui_package` when the
project is not pip-installed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.ui.ui_package import load_ui_package  # noqa: E402

load_ui_package()

import pytest  # noqa: E402
import qasync  # noqa: E402

from jinglefs_ui.qtfix import protect_bools  # noqa: E402

# On PySide6 6.12.0 every Signal.emit() leaks a reference to True and the interpreter aborts
# after a few thousand; keep the suite alive there (test_qt_environment still fails).
protect_bools()

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture
def qloop(qapp: Any) -> Generator[asyncio.AbstractEventLoop, None, None]:
    """A qasync loop on the test's QApplication: Qt events and asyncio run together."""
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        # qasync leaves its Qt timers registered when the loop closes; if the object that
        # owns them is collected later on another thread, Qt crashes in processEvents().
        # Kill them here, on the GUI thread, while the loop still exists.
        timer = getattr(loop, "_timer", None)
        loop.close()
        if timer is not None:
            callbacks = getattr(timer, "_SimpleTimer__callbacks", {})
            for timer_id in list(callbacks):
                timer.killTimer(timer_id)
            callbacks.clear()
        asyncio.set_event_loop(None)


@pytest.fixture
def run(qloop: asyncio.AbstractEventLoop) -> Runner[Any]:
    """``run(scenario())``: drive an async test scenario on the qasync loop (20 s cap)."""

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        return qloop.run_until_complete(asyncio.wait_for(coro, 20.0))

    return runner
