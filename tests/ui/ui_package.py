"""``import jinglefs_ui`` from a source checkout (tests, benchmarks, scripts).

``jinglefs_ui`` is the ``ui/`` folder (pyproject maps it); when the project is not
pip-installed, that folder is loaded under its installed name, so imports match production.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_ui_package() -> None:
    if "jinglefs_ui" in sys.modules or importlib.util.find_spec("jinglefs_ui") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "jinglefs_ui", ROOT / "ui" / "__init__.py", submodule_search_locations=[str(ROOT / "ui")])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["jinglefs_ui"] = module
    spec.loader.exec_module(module)
