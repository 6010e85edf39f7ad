#!/usr/bin/env bash
# Create or refresh the Superset virtual environment (.venv-superset) from the pinned lock.
#
# Superset lives in its own venv because its dependency tree (Flask, SQLAlchemy 1.4,
# pandas, ...) conflicts with the pipeline's (Dagster, dbt); the lock pins every package
# because an unpinned `pip install apache-superset` does not start today.
#
# Idempotent: the sha256 of the lock file is stored in the venv after a successful
# install; when it matches, nothing is reinstalled. Prefers uv (fast, uses PyPI directly),
# falls back to python3.11 -m venv + pip.
#
# Environment:
#   SUPERSET_VENV   target venv (default: <repo>/.venv-superset)
#   SUPERSET_PYTHON python 3.11 interpreter (default: the first python3.11 >= 3.11.3 found
#                   on PATH, in pyenv or /usr/bin; the lock's markers assume >= 3.11.3)
#   FORCE=1         reinstall even when the stamp matches
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SUPERSET_VENV:-$repo/.venv-superset}"
lock="$repo/dashboards/server/requirements.lock"
stamp="$venv/.crmwh-lock.sha256"
start=$(date +%s)

[[ -f "$lock" ]] || { echo "setup_superset: lock file not found: $lock" >&2; exit 1; }
want="$(sha256sum "$lock" | cut -d' ' -f1)"

if [[ "${FORCE:-0}" != "1" && -x "$venv/bin/superset" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "setup_superset: $venv already matches $(basename "$lock") (sha256 ${want:0:12}); nothing to do"
    exit 0
fi

python="${SUPERSET_PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 "$HOME/.pyenv/versions/3.11.7/bin/python3.11" /usr/bin/python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; v = sys.version_info; sys.exit(not ((3, 11, 3) <= v[:3] < (3, 12)))' 2>/dev/null; then
            python="$(command -v "$candidate")"
            break
        fi
    done
fi
[[ -n "$python" ]] || { echo "setup_superset: python >= 3.11.3, < 3.12 not found (set SUPERSET_PYTHON)" >&2; exit 1; }

rm -f "$stamp"
# a venv left by an older or wrong interpreter is rebuilt rather than patched
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c 'import sys; v = sys.version_info; sys.exit(not ((3, 11, 3) <= v[:3] < (3, 12)))' 2>/dev/null; then
    echo "setup_superset: $venv has no usable python 3.11; recreating it"
    rm -rf "$venv"
fi
# uv: on PATH, else where `make setup` installs it (pip --user)
uv="$(command -v uv || true)"
[[ -z "$uv" && -x "$HOME/.local/bin/uv" ]] && uv="$HOME/.local/bin/uv"
if [[ -n "$uv" ]]; then
    echo "setup_superset: installing $(grep -c '==' "$lock") pinned packages into $venv with uv"
    [[ -x "$venv/bin/python" ]] || "$uv" venv --quiet --python "$python" "$venv"
    # `sync` makes the venv exactly the lock (removes strays); bytecode is compiled up
    # front because the CLI runs with PYTHONDONTWRITEBYTECODE on some machines, which
    # would otherwise double every `superset` start-up.
    "$uv" pip sync --quiet --compile-bytecode --python "$venv/bin/python" "$lock"
else
    echo "setup_superset: installing $(grep -c '==' "$lock") pinned packages into $venv with pip"
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    # a venv made by uv has no pip
    "$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$venv/bin/python" -m ensurepip --quiet
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet --no-deps --requirement "$lock"
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null || true
fi

[[ -x "$venv/bin/superset" ]] || { echo "setup_superset: $venv/bin/superset missing after install" >&2; exit 1; }
"$venv/bin/python" -c 'import superset, duckdb, duckdb_engine, gunicorn, psycopg2, pyhive.sqlalchemy_hive' \
    || { echo "setup_superset: import check failed" >&2; exit 1; }
echo "$want" >"$stamp"
echo "setup_superset: done in $(( $(date +%s) - start ))s ($venv)"
