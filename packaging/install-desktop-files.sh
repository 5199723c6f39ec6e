#!/bin/sh
# Install the .desktop file, AppStream metainfo and icon under PREFIX (default ~/.local).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-$HOME/.local}
install -Dm644 "$root/packaging/org.jinglefs.JingleFS.desktop" \
    "$prefix/share/applications/org.jinglefs.JingleFS.desktop"
install -Dm644 "$root/packaging/org.jinglefs.JingleFS.metainfo.xml" \
    "$prefix/share/metainfo/org.jinglefs.JingleFS.metainfo.xml"
install -Dm644 "$root/ui/resources/org.jinglefs.JingleFS.svg" \
    "$prefix/share/icons/hicolor/scalable/apps/org.jinglefs.JingleFS.svg"
echo "installed into $prefix"
