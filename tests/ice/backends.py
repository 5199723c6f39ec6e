"""The two ICE data channel implementations as test parameters.

``native`` (libdatachannel through aiolibdatachannel) is skipped only where its wheel cannot
exist: CPython < 3.12 or another OS than Linux.  On CPython >= 3.12 on Linux it must import;
a missing install fails the test instead of hiding it (CI runs the suite on 3.12).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from jinglefs.ice.backend import IceBackendFactory, native_session_class
from jinglefs.ice.channel import IceSession

NO_WHEEL = sys.version_info < (3, 12) or not sys.platform.startswith("linux")
NO_WHEEL_REASON = (
    "the native data channel needs aiolibdatachannel, whose wheels exist for CPython >= 3.12 "
    f"on Linux only (this is CPython {sys.version_info.major}.{sys.version_info.minor} on "
    f"{sys.platform})"
)
needs_native = pytest.mark.skipif(NO_WHEEL, reason=NO_WHEEL_REASON)

#: ``Settings.ice_backend`` values, one per implementation.
BACKENDS = [pytest.param("aiortc", id="aiortc"),
            pytest.param("native", id="native", marks=needs_native)]
#: (initiator's, responder's) implementation: each alone and both interop directions.
PAIRS = [
    pytest.param(("aiortc", "aiortc"), id="aiortc"),
    pytest.param(("native", "native"), id="native", marks=needs_native),
    pytest.param(("native", "aiortc"), id="native-to-aiortc", marks=needs_native),
    pytest.param(("aiortc", "native"), id="aiortc-to-native", marks=needs_native),
]


def session_class(backend: str) -> IceBackendFactory:
    """The session class of ``backend`` ("aiortc" or "native")."""
    if backend == "aiortc":
        return IceSession
    cls = native_session_class()
    assert cls is not None, (
        "aiolibdatachannel does not import on this CPython >= 3.12 Linux: install it "
        "(pyproject.toml lists it for these platforms)")
    return cls


def native_module() -> Any:
    """jinglefs.ice.native (imported only where the wheel exists)."""
    session_class("native")
    import jinglefs.ice.native as native

    return native
