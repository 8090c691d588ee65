#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu: runs a Windows test binary under Wine, in the
# project's prefix (made by scripts/setup.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/wine-env.sh"
if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
    echo "wine-runner: no prepared Wine prefix at $WINEPREFIX; run scripts/setup.sh first" >&2
    exit 2
fi
exec wine "$@"
