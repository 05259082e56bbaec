#!/usr/bin/env bash
# Debian's headless-capable Chromium, for the report test (crates/tests/tests/report.rs). Needs root.
set -euo pipefail
if command -v chromium >/dev/null; then
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
chromium --version
