#!/bin/sh
# One-folder PyInstaller build of the desktop app: dist/jinglefs-gui/jinglefs-gui.
# Needs: pip install pyinstaller, plus jinglefs and its gui extra importable.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
alias_dir="$root/build/pyi-src"
mkdir -p "$alias_dir"
# The ui/ folder is installed as jinglefs_ui; give PyInstaller that name without installing.
ln -sfn "$root/ui" "$alias_dir/jinglefs_ui"
JINGLEFS_UI_ALIAS="$alias_dir" python -m PyInstaller --noconfirm --clean \
    --distpath "$root/dist" --workpath "$root/build/pyinstaller" \
    "$root/packaging/jinglefs-gui.spec"
bin="$root/dist/jinglefs-gui/jinglefs-gui"
"$bin" --version
"$bin" --help >/dev/null
echo "built $bin"
