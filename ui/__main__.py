"""``python -m jinglefs_ui``."""

from __future__ import annotations

import sys

from .app import main

sys.exit(main())
