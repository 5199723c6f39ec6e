"""packaging/: desktop entry, AppStream metadata, the installable package and the frozen app.

The metadata is checked against the freedesktop Desktop Entry and AppStream rules that
matter for this app, and against each other and pyproject.toml (one app id, one binary
name, one version).  The PyInstaller one-folder build is made from packaging/'s spec into a
temporary folder, as packaging/build-pyinstaller.sh does, and the binary is run: --version,
--help, and a real start (offscreen) that ends cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

import jinglefs
from jinglefs_ui import APP_ID, APP_NAME
from jinglefs_ui.app import build_parser

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
ICON = ROOT / "ui" / "resources" / f"{APP_ID}.svg"
SPEC = PACKAGING / "jinglefs-gui.spec"

#: Main categories of the freedesktop menu specification (one is required).
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game",
                   "Graphics", "Network", "Office", "Science", "Settings", "System", "Utility"}
#: Additional categories this kind of app may use, with the main ones they require.
ADDITIONAL_CATEGORIES = {"FileTransfer": {"Network"}, "P2P": {"Network"},
                         "InstantMessaging": {"Network"}, "Chat": {"Network"}}
#: Exec field codes (Desktop Entry spec, "The Exec key").
FIELD_CODES = {"%f", "%F", "%u", "%U", "%i", "%c", "%k"}
#: Seconds a PyInstaller build may take before the test gives up (it takes ~25 s here).
BUILD_TIMEOUT = 600


def pyproject() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def gui_script() -> tuple[str, str]:
    """The (command, "module:function") of the desktop app in pyproject.toml."""
    scripts = pyproject()["project"]["gui-scripts"]  # type: ignore[index]
    assert isinstance(scripts, dict) and len(scripts) == 1, scripts
    [(command, target)] = scripts.items()
    return command, target


# -- the desktop entry ---------------------------------------------------------------------

def read_desktop_file(path: Path) -> dict[str, dict[str, str]]:
    """Parse a .desktop file strictly: groups, unique keys, nothing outside a group."""
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            match = re.fullmatch(r"\[([^\[\]\x00-\x1f]+)\]", line)
            assert match, f"line {number}: bad group header {line!r}"
            assert match.group(1) not in groups, f"line {number}: group repeated"
            current = groups.setdefault(match.group(1), {})
            continue
        assert current is not None, f"line {number}: key outside of a group"
        key, sep, value = line.partition("=")
        key = key.strip()
        assert sep and re.fullmatch(r"[A-Za-z0-9-]+(\[[A-Za-z_@.]+\])?", key), \
            f"line {number}: not a key=value line: {line!r}"
        assert key not in current, f"line {number}: key {key} repeated"
        current[key] = value.strip()
    return groups


@pytest.fixture(scope="module")
def entry() -> dict[str, str]:
    groups = read_desktop_file(DESKTOP)
    assert list(groups)[0] == "Desktop Entry", "the first group must be [Desktop Entry]"
    return groups["Desktop Entry"]


def semicolon_list(value: str) -> list[str]:
    assert value.endswith(";"), f"{value!r}: a list must end with ';'"
    items = value[:-1].split(";")
    assert all(items), f"{value!r}: empty item"
    return items


def test_desktop_entry_basics(entry: dict[str, str]) -> None:
    assert DESKTOP.name == f"{APP_ID}.desktop"  # the desktop-file id is the app id
    assert entry["Type"] == "Application"
    assert entry["Name"] == APP_NAME
    assert entry["Comment"] and entry["GenericName"]
    assert entry["Terminal"] == "false"
    for key in ("Terminal", "StartupNotify", "SingleMainWindow"):
        if key in entry:
            assert entry[key] in ("true", "false"), key


def test_exec_runs_the_installed_gui_command_with_files(entry: dict[str, str]) -> None:
    command, _ = gui_script()
    argv = shlex.split(entry["Exec"])
    assert argv[0] == command
    codes = [a for a in argv[1:] if a.startswith("%")]
    assert set(codes) <= FIELD_CODES, codes
    assert len([c for c in codes if c in {"%f", "%F", "%u", "%U"}]) <= 1
    assert entry.get("TryExec", command) == command
    if "%F" in codes or "%f" in codes:
        # The launcher appends local paths: the app must take them as arguments.
        args = build_parser().parse_args(["/tmp/a b.txt", "/tmp/c.txt"])
        assert args.files == ["/tmp/a b.txt", "/tmp/c.txt"]


def test_icon_names_the_shipped_svg(entry: dict[str, str]) -> None:
    assert entry["Icon"] == APP_ID  # an icon-theme name, not a path
    root = ET.parse(ICON).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    install = (PACKAGING / "install-desktop-files.sh").read_text()
    assert f"share/icons/hicolor/scalable/apps/{APP_ID}.svg" in install
    assert f"share/applications/{DESKTOP.name}" in install
    assert f"share/metainfo/{METAINFO.name}" in install


def test_categories_and_mime_types(entry: dict[str, str]) -> None:
    categories = semicolon_list(entry["Categories"])
    assert MAIN_CATEGORIES & set(categories), f"no main category in {categories}"
    for cat in categories:
        assert cat in MAIN_CATEGORIES or cat in ADDITIONAL_CATEGORIES or \
            cat.startswith("X-"), f"unregistered category {cat}"
        assert ADDITIONAL_CATEGORIES.get(cat, set()) <= set(categories), \
            f"{cat} needs {ADDITIONAL_CATEGORIES[cat]}"
    if "MimeType" in entry:
        for mime in semicolon_list(entry["MimeType"]):
            assert re.fullmatch(r"[a-z0-9.+-]+/[A-Za-z0-9.+*-]+", mime), mime
    if "Keywords" in entry:
        semicolon_list(entry["Keywords"])


# -- AppStream -------------------------------------------------------------------------------

def test_metainfo_is_well_formed_and_matches_the_desktop_entry(entry: dict[str, str]) -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"

    def text(path: str) -> str:
        el = root.find(path)
        assert el is not None and el.text, f"<{path}> missing or empty"
        return el.text.strip()

    assert text("id") == APP_ID
    assert METAINFO.name == f"{APP_ID}.metainfo.xml"
    [launchable] = root.findall("launchable")
    assert launchable.get("type") == "desktop-id" and launchable.text == DESKTOP.name
    command, _ = gui_script()
    assert [b.text for b in root.findall("provides/binary")] == [command]
    assert text("name") == entry["Name"]
    summary = text("summary")
    assert len(summary) <= 100 and not summary.endswith(".")
    assert text("metadata_license") == "CC0-1.0"
    project = pyproject()["project"]
    assert isinstance(project, dict)
    license_ = project["license"]
    assert text("project_license") == (license_["text"] if isinstance(license_, dict)
                                       else license_)
    assert root.findall("description/p"), "the description needs a paragraph"
    assert root.find("content_rating") is not None
    categories = [c.text for c in root.findall("categories/category")]
    assert categories == semicolon_list(entry["Categories"])
    releases = root.findall("releases/release")
    assert releases, "no release"
    # The newest release is listed first and is the version being packaged.
    assert releases[0].get("version") == project["version"] == jinglefs.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", releases[0].get("date") or "")


# -- the installable package ------------------------------------------------------------------

def test_the_built_package_contains_the_desktop_app(tmp_path: Path) -> None:
    """What ``pip install jinglefs`` gets: build the package and look for jinglefs_ui.

    The ``jinglefs-gui`` command imports ``jinglefs_ui.app``, so the package must ship the
    ``ui/`` folder under that name, with its subpackages and its icon.
    """
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    for folder in ("jinglefs", "ui"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                dest = src / path.relative_to(ROOT)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(path.read_bytes())
    lib = tmp_path / "lib"
    build = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q",
         "build_py", "--build-lib", str(lib)],
        cwd=src, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    expected = {Path("jinglefs_ui") / p.relative_to(ROOT / "ui")
                for p in (ROOT / "ui").rglob("*")
                if p.is_file() and (p.suffix == ".py" or p.parent.name == "resources")
                and "__pycache__" not in p.parts}
    expected |= {p.relative_to(ROOT) for p in (ROOT / "jinglefs").rglob("*.py")
                 if "__pycache__" not in p.parts}
    built = {p.relative_to(lib) for p in lib.rglob("*") if p.is_file()}
    missing = sorted(str(p) for p in expected - built)
    assert not missing, f"the package leaves out: {missing[:12]}"
    # Every command's target module is in the package.
    scripts = pyproject()["project"]
    assert isinstance(scripts, dict)
    for table in ("scripts", "gui-scripts"):
        for command, target in scripts[table].items():
            module = lib / target.partition(":")[0].replace(".", "/")
            assert (module.with_suffix(".py").is_file()
                    or (module / "__init__.py").is_file()), (command, target)


# -- the PyInstaller one-folder build ---------------------------------------------------------

@dataclass(frozen=True)
class Frozen:
    binary: Path
    #: A folder where ``jinglefs_ui`` is the ui/ folder (what the build imported).
    alias: Path


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Generator[Frozen, None, None]:
    """Build dist/jinglefs-gui/ from packaging/jinglefs-gui.spec in a temporary folder."""
    out = tmp_path_factory.mktemp("pyinstaller")
    # As build-pyinstaller.sh does: ui/ is importable as jinglefs_ui without installing.
    alias = out / "alias"
    alias.mkdir()
    (alias / "jinglefs_ui").symlink_to(ROOT / "ui", target_is_directory=True)
    env = dict(os.environ, JINGLEFS_UI_ALIAS=str(alias))
    log = out / "build.log"
    with open(log, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
             "--distpath", str(out / "dist"), "--workpath", str(out / "work"), str(SPEC)],
            cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            timeout=BUILD_TIMEOUT)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert "No module named PyInstaller" not in tail, \
        "PyInstaller is not installed: it belongs in the dev extra (pip install pyinstaller)"
    assert proc.returncode == 0, f"PyInstaller failed:\n{tail}"
    binary = out / "dist" / "jinglefs-gui" / "jinglefs-gui"
    assert binary.is_file() and os.access(binary, os.X_OK), tail
    yield Frozen(binary, alias)


def frozen_env(tmp_path: Path) -> dict[str, str]:
    """No real account, no real state, and a single-instance key of its own."""
    user = f"jinglefs-pkg-{secrets.token_hex(4)}"  # the single-instance key uses the user
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", USER=user, LOGNAME=user,
               JINGLEFS_CONFIG_DIR=str(tmp_path / "config"),
               JINGLEFS_STATE_DIR=str(tmp_path / "state"),
               JINGLEFS_DOWNLOADS_DIR=str(tmp_path / "downloads"))
    env.pop("JINGLEFS_PASSWORD", None)
    return env


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_binary_answers_version_and_help(frozen: Frozen, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    env = frozen_env(tmp_path)
    env["COLUMNS"] = "100"  # argparse wraps --help to the terminal width
    monkeypatch.setenv("COLUMNS", "100")
    version = subprocess.run([str(frozen.binary), "--version"], capture_output=True,
                             text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"jinglefs-gui {jinglefs.__version__}"
    helped = subprocess.run([str(frozen.binary), "--help"], capture_output=True, text=True,
                            env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: jinglefs-gui ")
    for option in ("--version", "--hidden", "--verbose", "FILE"):
        assert option in helped.stdout, option
    assert helped.stdout == build_parser().format_help()  # the same app as the sources


#: Top-level packages whose modules the frozen app must carry: the project and what it
#: imports (pyproject dependencies and the gui extra), by import name.  PySide6 is left
#: to its PyInstaller hook (shiboken loads part of it from an embedded archive); the start
#: test below shows that the bundled Qt works.
BUNDLED = {"jinglefs", "jinglefs_ui", "slixmpp", "aioice", "aiortc", "cryptography",
           "platformdirs", "keyring", "qasync"}

#: Loads what the app loads, including what it imports only when it logs in (the client
#: and every transport it finds), and prints {module: file}.
_LOADED = """
import json, sys
import jinglefs_ui.app, jinglefs_ui.bridge, jinglefs_ui.widgets.main_window
import jinglefs.client, jinglefs.ladder
print(json.dumps({n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}))
"""


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_bundle_carries_what_a_login_loads(frozen: Frozen) -> None:
    """jinglefs.client and the transports are imported only when the app connects: a
    module PyInstaller missed would only show when a user logs in (or silently lose a
    transport), so compare the bundle with what a real import of them loads."""
    from PyInstaller.archive.readers import CArchiveReader

    # The same import path as the build (the spec's pathex): this tree, not an install.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(frozen.alias), str(ROOT)]),
               QT_QPA_PLATFORM="offscreen")
    probe = subprocess.run([sys.executable, "-c", _LOADED], capture_output=True, text=True,
                           env=env, cwd=frozen.alias, timeout=120)
    assert probe.returncode == 0, probe.stderr
    loaded: dict[str, str | None] = json.loads(probe.stdout)
    assert "jinglefs.s5b.negotiator" in loaded  # the probe did load the transports
    pyz = set(CArchiveReader(str(frozen.binary)).open_embedded_archive("PYZ.pyz").toc)
    internal = frozen.binary.parent / "_internal"
    with zipfile.ZipFile(internal / "base_library.zip") as z:
        pyz |= {n[:-4].replace("/", ".").removesuffix(".__init__") for n in z.namelist()
                if n.endswith(".pyc")}
    binaries = {p.name.split(".")[0] for p in internal.rglob("*.so*")}
    missing = []
    for name, path in loaded.items():
        if name.split(".")[0] not in BUNDLED or not path:
            continue
        if path.endswith(".py") and name not in pyz:
            missing.append(name)
        elif path.endswith(".so") and name.rsplit(".", 1)[-1] not in binaries:
            missing.append(name)
    assert not missing, f"the frozen app lacks: {sorted(missing)[:20]}"


def _catches(pid: int, sig: int) -> bool:
    """True when process ``pid`` has a handler for ``sig`` (Linux /proc SigCgt mask)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    raise AssertionError("no SigCgt line")


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_app_starts_and_quits_cleanly(frozen: Frozen, tmp_path: Path) -> None:
    """The bundled Qt, qasync and app start; a second launch is handed to the first; SIGTERM
    ends it with exit code 0 (the app's own handler, which only exists once its loop runs)."""
    env = frozen_env(tmp_path)
    app = subprocess.Popen([str(frozen.binary)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _catches(app.pid, signal.SIGTERM):
            if app.poll() is not None:
                out, err = app.communicate()
                raise AssertionError(f"the app ended at start (exit {app.returncode}):\n"
                                     f"{err[-3000:]}")
            assert time.monotonic() < deadline, "the app never reached its event loop"
            time.sleep(0.05)
        second = subprocess.run([str(frozen.binary), str(tmp_path / "some-file.txt")],
                                capture_output=True, text=True, env=env, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert second.returncode == 0, second.stderr
        assert "jinglefs-gui is already running" in second.stderr
        app.send_signal(signal.SIGTERM)
        out, err = app.communicate(timeout=60)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, err[-3000:]
    assert "Traceback" not in err and " ERROR " not in err, err[-3000:]
