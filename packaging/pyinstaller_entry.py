"""Entry script for the PyInstaller build: the same as the ``jinglefs-gui`` command."""

import sys

from jinglefs_ui.app import main

if __name__ == "__main__":
    sys.exit(main())
