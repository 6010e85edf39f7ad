#!/usr/bin/env bash
# Install what the browser test of the dashboards needs (tests/test_superset.py,
# tests/browser/dashboards.mjs): Debian's Chromium and playwright-core from npm.
#
# playwright-core is the library without browsers; it drives the system Chromium, because
# a test tool cannot download its own browser here (no network but the package
# registries). Idempotent: each step is skipped when its result is already present.
#
# Environment:
#   CHROMIUM   Chromium binary to check (default: /usr/bin/chromium)
#   SKIP_APT=1 do not run apt-get (e.g. no root); fail if Chromium is missing
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_dir="$repo/tests/browser"
chromium="${CHROMIUM:-/usr/bin/chromium}"
start=$(date +%s)

apt_install() {  # apt_install PACKAGE... (retries while another dpkg holds the lock)
    if [[ "${SKIP_APT:-0}" == "1" ]]; then
        echo "setup_browser: $* missing and SKIP_APT=1" >&2
        exit 1
    fi
    local sudo=""
    [[ "$(id -u)" == "0" ]] || sudo="sudo"
    echo "setup_browser: apt-get install $*"
    for attempt in 1 2 3 4 5 6; do
        if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install \
            -y -qq --no-install-recommends "$@" >/dev/null; then
            return 0
        fi
        echo "setup_browser: apt-get failed (attempt $attempt), retrying" >&2
        sleep 10
    done
    exit 1
}

missing=()
[[ -x "$chromium" ]] || missing+=(chromium fonts-liberation)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if (( ${#missing[@]} )); then
    apt_install "${missing[@]}"
fi
"$chromium" --version >/dev/null 2>&1 || { echo "setup_browser: $chromium does not run" >&2; exit 1; }

want="$(sha256sum "$browser_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$browser_dir/node_modules/.crmwh-lock.sha256"
if [[ ! -f "$browser_dir/node_modules/playwright-core/package.json" || ! -f "$stamp" \
    || "$(cat "$stamp")" != "$want" ]]; then
    echo "setup_browser: installing playwright-core (npm ci, no browser download)"
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
fi
echo "setup_browser: ready in $(( $(date +%s) - start ))s ($("$chromium" --version 2>/dev/null | head -1))"
