#!/usr/bin/env bash
# Install the Debian packages of the scheduled reports (`crmwh serve --reports`,
# tests/test_reports.py): PostgreSQL (Superset's metadata), Redis (Celery broker),
# Chromium and chromedriver (dashboard screenshots). The Python side (psycopg2, celery,
# redis, selenium) is in dashboards/server/requirements.lock (scripts/setup_superset.sh).
#
# Idempotent: apt-get runs only when a package is missing. Nothing is started or
# enabled here: `crmwh serve --reports` runs its own PostgreSQL cluster and Redis server
# under the state directory on private ports.
#
# Environment:
#   SKIP_APT=1  do not run apt-get (e.g. no root); fail if a package is missing
set -euo pipefail

packages=(postgresql redis-server chromium chromium-driver fonts-liberation)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if [[ "${SKIP_APT:-0}" == "1" ]]; then
        echo "setup_reports: missing Debian packages ${missing[*]} and SKIP_APT=1" >&2
        exit 1
    fi
    sudo=""
    [[ "$(id -u)" == "0" ]] || sudo="sudo"
    echo "setup_reports: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # the dpkg lock may be held by another apt run for a while: retry
    for attempt in 1 2 3 4 5; do
        if $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
            break
        fi
        [[ $attempt == 5 ]] && { echo "setup_reports: apt-get install failed" >&2; exit 1; }
        sleep 15
    done
    # Debian's postinst may start the packaged services; the reports mode does not use
    # them (it runs private instances), so they are left as the system has them.
fi

ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "setup_reports: initdb not found" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "setup_reports: redis-server not found" >&2; exit 1; }
/usr/bin/chromium --version >/dev/null 2>&1 || { echo "setup_reports: /usr/bin/chromium does not run" >&2; exit 1; }
/usr/bin/chromedriver --version >/dev/null 2>&1 || { echo "setup_reports: /usr/bin/chromedriver does not run" >&2; exit 1; }
echo "setup_reports: postgresql, redis-server, chromium, chromedriver present"
