#!/usr/bin/env bash
# The optional Spark engine (`make setup-spark`, run by `make test`): Java 17 for pyspark,
# installed from Debian's packages when no Java 17/21 is on PATH. Idempotent. The Python
# side is `uv sync --extra spark` (Makefile).
set -euo pipefail

java_major() {
    command -v java >/dev/null 2>&1 || return 0
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}

major="$(java_major)"
if [[ "$major" == "17" || "$major" == "21" ]]; then
    exit 0
fi
echo "setup-spark: Java 17 not found (java: ${major:-none}); installing openjdk-17-jre-headless"
SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5; do
    if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq openjdk-17-jre-headless; then
        break
    fi
    echo "setup-spark: apt-get failed (attempt $attempt; dpkg lock held?), retrying" >&2
    sleep 15
done
major="$(java_major)"
if [[ "$major" != "17" && "$major" != "21" ]]; then
    # another Java may come first on PATH: put Debian's Java 17 first for this machine
    if [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
        $SUDO update-alternatives --set java /usr/lib/jvm/java-17-openjdk-amd64/bin/java || true
    fi
fi
major="$(java_major)"
if [[ "$major" != "17" && "$major" != "21" ]]; then
    echo "setup-spark: could not provide Java 17 (java: ${major:-none})" >&2
    exit 1
fi
