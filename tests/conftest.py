"""Shared fixtures: real Prosody / coturn servers on loopback.

Fixtures:
    prosody           session: ProsodyServer with alice <-> bob (mutual contacts, subscription
                      both) and carol (a stranger to both). TLS required, proxy65 on, no TURN.
    ejabberd          session: EjabberdServer with the same accounts and rosters as ``prosody``
                      (tests/servers/ejabberd.py), started only by tests that ask for it.
    prosody_factory   function: ``prosody_factory(accounts=..., start=True, **ProsodyServer
                      kwargs)`` for tests that need their own server; stopped at teardown.
    coturn            session: CoturnServer (TURN REST auth) on 127.0.0.1.
    coturn_factory    function: ``coturn_factory(**CoturnServer kwargs)``, started.
    (autouse)         JINGLEFS_STATE_DIR: a throwaway folder per test.

A missing ``prosody``/``turnserver``/``ejabberd`` binary FAILS the test (it is never skipped):
run ``bash scripts/setup``. Server logs stay under pytest's basetemp
(/tmp/pytest-of-$USER/pytest-N/); a failing test that used a server gets its log tail appended
to the report.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `pytest` without `python -m` does not add the cwd
    sys.path.insert(0, str(_ROOT))

from tests.servers import ServerError  # noqa: E402
from tests.servers.coturn import CoturnServer  # noqa: E402
from tests.servers.ejabberd import EjabberdServer  # noqa: E402
from tests.servers.prosody import ProsodyServer  # noqa: E402
from tests.servers.xmpp_server import XmppServer  # noqa: E402

ProsodyFactory = Callable[..., ProsodyServer]
CoturnFactory = Callable[..., CoturnServer]

#: Accounts of the shared ``prosody`` fixture: user -> roster.
DEFAULT_ACCOUNTS: dict[str, tuple[str, ...]] = {"alice": ("bob",), "bob": (), "carol": ()}

_SERVERS_KEY = pytest.StashKey[list[Any]]()

S = TypeVar("S", ProsodyServer, EjabberdServer, CoturnServer)


def _start(server: S) -> S:
    try:
        return server.start()
    except ServerError as exc:
        pytest.fail(f"could not start a test server: {exc}", pytrace=False)


def _serve(server: S) -> Generator[S, None, None]:
    """A started server for the length of a fixture, stopped afterwards."""
    try:
        yield _start(server)
    finally:
        server.stop()


@contextmanager
def _servers(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    """The servers a factory fixture makes: logged on failure, stopped at teardown."""
    made: list[Any] = []
    request.node.stash.setdefault(_SERVERS_KEY, []).append(made)
    try:
        yield made
    finally:
        for server in made:
            server.stop()


def _add_accounts(server: XmppServer, accounts: Mapping[str, Iterable[str]]) -> None:
    for user, roster in accounts.items():
        server.add_account(user, roster=roster)


@pytest.fixture(scope="session")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Generator[ProsodyServer, None, None]:
    server = ProsodyServer(tmp_path_factory.mktemp("prosody"))
    _add_accounts(server, DEFAULT_ACCOUNTS)
    yield from _serve(server)


@pytest.fixture(scope="session")
def ejabberd(tmp_path_factory: pytest.TempPathFactory) -> Generator[EjabberdServer, None, None]:
    server = EjabberdServer(tmp_path_factory.mktemp("ejabberd"))
    _add_accounts(server, DEFAULT_ACCOUNTS)
    yield from _serve(server)


@pytest.fixture
def prosody_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Generator[ProsodyFactory, None, None]:
    with _servers(request) as made:

        def make(
            accounts: Mapping[str, Iterable[str]] | None = None, start: bool = True,
            **kwargs: Any
        ) -> ProsodyServer:
            server = ProsodyServer(tmp_path_factory.mktemp("prosody-custom"), **kwargs)
            made.append(server)
            _add_accounts(server, DEFAULT_ACCOUNTS if accounts is None else accounts)
            return _start(server) if start else server

        yield make


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Generator[CoturnServer, None, None]:
    yield from _serve(CoturnServer(tmp_path_factory.mktemp("coturn")))


@pytest.fixture
def coturn_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Generator[CoturnFactory, None, None]:
    with _servers(request) as made:

        def make(**kwargs: Any) -> CoturnServer:
            server = CoturnServer(tmp_path_factory.mktemp("coturn-custom"), **kwargs)
            made.append(server)
            return _start(server)

        yield make


@pytest.fixture(scope="session")
def _omemo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One OMEMO data folder for the whole run: each account keeps one device.

    A fresh folder per test would give every account a new OMEMO device in every test, and
    their device lists on the shared servers (PEP) would grow with the suite, so each
    sealed JET key would be encrypted to ever more devices.  Tests about key storage use
    folders of their own."""
    return tmp_path_factory.mktemp("omemo-data")


@pytest.fixture(autouse=True)
def _throwaway_state_dir(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch, _omemo_data_dir: Path) -> None:
    """JINGLEFS_STATE_DIR (history, resume records of partial downloads) is a throwaway
    folder for every test, never the user's state directory; a test may set its own."""
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    # OMEMO keys (jinglefs.omemo): never the user's data directory either
    monkeypatch.setenv("JINGLEFS_DATA_DIR", str(_omemo_data_dir))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    servers: list[Any] = []
    funcargs = getattr(item, "funcargs", {})
    for name in ("prosody", "ejabberd", "xmpp_server", "coturn"):
        if name in funcargs and funcargs[name] not in servers:
            servers.append(funcargs[name])
    for group in item.stash.get(_SERVERS_KEY, []):
        servers.extend(group)
    for server in servers:
        log = Path(server.log_file)
        try:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            continue
        report.sections.append((f"{type(server).__name__} log tail ({log})", tail))
