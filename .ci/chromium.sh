#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the compliance report's
# browser test (report/browser_test.go) drives it headless. With CI=true
# that test fails, rather than skips, when chromium is absent.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
echo "== installing chromium for the report's browser test"
sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; }; then
  echo "warning: could not install chromium; the browser test will fail under CI=true" >&2
fi
exit 0
