"""Web-facing protections of the Superset server, installed by ``superset_config.py``.

Loaded by file path (the Superset processes do not import the project), so it depends on
nothing but the Superset environment. Three parts:

- ``secret_key_problem``: why a Flask secret key must not be used (too short, too few
  distinct characters, too little entropy, a repeated or sequential pattern), or None;
- a login throttle on both login endpoints, the form (``POST /login/``) and the API
  (``POST /api/v1/security/login``). It counts *failed* attempts only, so a correct
  login never uses up anybody's allowance, and refuses (429, ``Retry-After``) every
  attempt of a key that reached its limit, correct or not, until the window has passed:
  per client address and user name, per user name, and per client address. Counters
  live in ``RATELIMIT_STORAGE_URI`` (``memory://`` in the one gunicorn worker of the
  default server, Redis in the reports mode, so every process shares them);
- the Great Expectations Data Docs at ``/crmwh/data-docs/``: only for logged-in users
  with a role of ``CRMWH_DATA_DOCS_ROLES``, confined to the site's folder, hidden files
  (the ``.gx`` stores) never served, and each page sandboxed by its Content Security
  Policy, so that a value rendered into a page cannot run script as the Superset origin.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

MIN_KEY_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 6  # 32 random hex digits use fewer than 6 once in ~5e9 keys (7: ~4e-8)
MIN_BITS_PER_CHARACTER = 2.5
REPEAT_LENGTH = 8  # a run of this many characters appearing twice is a pattern

DATA_DOCS_PREFIX = "/crmwh/data-docs"
DATA_DOCS_DIR_ENV = "CRMWH_DATA_DOCS_DIR"
#: GX's stock assets (CSS, fonts, images; no data): served without a login, because a
#: sandboxed page has an opaque origin and its browser sends no SameSite cookie with them
PUBLIC_DOCS_FOLDER = "static"
#: where the pages of GX Data Docs load their scripts and styles from (a machine without
#: internet shows them unstyled); they run inside the sandbox only
_DOCS_CDNS = [
    "https://cdn.jsdelivr.net",
    "https://cdnjs.cloudflare.com",
    "https://code.jquery.com",
    "https://stackpath.bootstrapcdn.com",
    "https://maxcdn.bootstrapcdn.com",
    "https://unpkg.com",
]
DATA_DOCS_CSP: dict[str, Any] = {
    "default-src": "'none'",
    "script-src": ["'unsafe-inline'", *_DOCS_CDNS],
    "style-src": ["'self'", "'unsafe-inline'", *_DOCS_CDNS],
    "font-src": ["'self'", "data:", *_DOCS_CDNS],
    "img-src": ["'self'", "data:"],
    "connect-src": "'none'",
    "form-action": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    # no allow-same-origin: the page runs as an opaque origin, not as Superset
    "sandbox": "allow-scripts",
}

LOGIN_FORM_PATH = "/login/"
LOGIN_API_PATH = "/api/v1/security/login"
DEFAULT_LOGIN_LIMITS = {
    "address_user": "5 per 5 minutes",
    "user": "20 per 5 minutes",
    "address": "50 per 5 minutes",
}


# --------------------------------------------------------------------------- secret key


def _bits_per_character(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` is not fit to sign sessions and encrypt stored secrets, or None.

    A generated key (``secrets.token_urlsafe(48)``, ``openssl rand -base64 42``, 32 or
    more hex digits) passes; a short key, one of few distinct characters, one with a
    low Shannon entropy per character, one where a run of characters repeats, or one
    that is mostly an alphabetic/numeric sequence (``abcdef…``, ``123456…``) does not.
    """
    if len(key) < MIN_KEY_LENGTH:
        return f"it has {len(key)} characters; at least {MIN_KEY_LENGTH} are needed"
    distinct = len(set(key))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return (
            f"it uses only {distinct} distinct characters (at least"
            f" {MIN_DISTINCT_CHARACTERS}); a random key uses many"
        )
    bits = _bits_per_character(key)
    if bits < MIN_BITS_PER_CHARACTER:
        return (
            f"its characters carry {bits:.2f} bits each (Shannon entropy; at least"
            f" {MIN_BITS_PER_CHARACTER:.1f}): it is not random"
        )
    seen: dict[str, int] = {}
    for i in range(len(key) - REPEAT_LENGTH + 1):
        chunk = key[i : i + REPEAT_LENGTH]
        if chunk in seen:
            return f"{chunk!r} occurs twice (at {seen[chunk]} and {i}): a repeated pattern"
        seen[chunk] = i
    steps = [ord(b) - ord(a) for a, b in zip(key, key[1:], strict=False)]
    sequential = sum(1 for s in steps if s in (-1, 0, 1))
    if sequential * 5 > len(steps) * 3:
        return "over 60 % of neighbouring characters are equal or consecutive: a sequence"
    return None


# --------------------------------------------------------------------------- login throttle


class LoginThrottle:
    """Failed-login counters in a ``limits`` storage; see the module docstring."""

    def __init__(self, storage_uri: str, limits_by_scope: dict[str, str]) -> None:
        from limits import parse
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        unknown = set(limits_by_scope) - set(DEFAULT_LOGIN_LIMITS)
        if unknown:
            raise RuntimeError(f"CRMWH_LOGIN_FAILURE_LIMITS: unknown scopes {sorted(unknown)}")
        self.limits = {scope: parse(value) for scope, value in limits_by_scope.items()}

    @staticmethod
    def _keys(address: str, username: str) -> dict[str, tuple[str, ...]]:
        return {
            "address_user": ("crmwh-login", "address-user", address, username),
            "user": ("crmwh-login", "user", username),
            "address": ("crmwh-login", "address", address),
        }

    def retry_after(self, address: str, username: str) -> int | None:
        """Seconds until the next attempt may be made, or None when it may be made now."""
        import time

        waits = []
        for scope, ids in self._keys(address, username).items():
            item = self.limits.get(scope)
            if item is not None and not self.limiter.test(item, *ids):
                reset = self.limiter.get_window_stats(item, *ids).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None

    def failed(self, address: str, username: str) -> None:
        """Count one failed attempt in every scope."""
        for scope, ids in self._keys(address, username).items():
            item = self.limits.get(scope)
            if item is not None:
                self.limiter.hit(item, *ids)


def _login_username(request: Any) -> str | None:
    """The user name an attempt is for (form field or JSON), lower-cased; None when the
    request is no login attempt at all."""
    if request.method != "POST":
        return None
    if request.path == LOGIN_API_PATH:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    elif request.path == LOGIN_FORM_PATH:
        name = request.form.get("username")
    else:
        return None
    return str(name or "").strip().lower()


def install_login_throttle(app: Any) -> LoginThrottle:
    """Refuse login attempts over the limits before they run; count the failed ones."""
    from flask import g, jsonify, make_response, request
    from flask_login import current_user

    throttle = LoginThrottle(
        app.config.get("RATELIMIT_STORAGE_URI") or "memory://",
        {**DEFAULT_LOGIN_LIMITS, **(app.config.get("CRMWH_LOGIN_FAILURE_LIMITS") or {})},
    )

    @app.before_request
    def _refuse_throttled_login():  # noqa: ANN202
        username = _login_username(request)
        if username is None:
            return None
        address = request.remote_addr or "unknown"
        wait = throttle.retry_after(address, username)
        if wait is None:
            g.crmwh_login_attempt = (address, username)
            return None
        message = f"Too many failed logins: try again in {wait} seconds."
        if request.path == LOGIN_API_PATH:
            response = make_response(jsonify(message=message), 429)
        else:
            response = make_response(message, 429, {"Content-Type": "text/plain; charset=utf-8"})
        response.headers["Retry-After"] = str(wait)
        return response

    @app.after_request
    def _count_failed_login(response):  # noqa: ANN001, ANN202
        attempt = g.pop("crmwh_login_attempt", None)
        if attempt is None:
            return response
        if request.path == LOGIN_API_PATH:
            failed = response.status_code == 401
        else:  # the form: a failure renders or redirects back without logging in
            failed = response.status_code < 400 and not current_user.is_authenticated
        if failed:
            throttle.failed(*attempt)
        return response

    return throttle


# --------------------------------------------------------------------------- data docs


def _docs_user() -> Any:
    """The logged-in user: the session's (a browser) or a Bearer token's (a script)."""
    from flask_login import current_user

    if current_user and current_user.is_authenticated:
        return current_user
    try:
        from flask_jwt_extended import get_current_user, verify_jwt_in_request

        if verify_jwt_in_request(optional=True):
            return get_current_user()
    except Exception:  # noqa: BLE001 - an invalid or expired token is no login
        return None
    return None


def resolve_docs_file(root: Path, subpath: str) -> Path | None:
    """The file of the site under ``root`` that ``subpath`` names, or None: no hidden
    segment (``.gx``, ``..``), nothing outside ``root`` even through a symbolic link."""
    parts = [p for p in subpath.split("/") if p]
    if any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    root = root.resolve()
    target = root.joinpath(*parts) if parts else root
    if target.is_dir():
        target = target / "index.html"
    try:
        resolved = target.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, RuntimeError, OSError):
        return None
    if not resolved.is_relative_to(root) or not resolved.is_file():
        return None
    return resolved


def install_data_docs(app: Any) -> None:
    """``/crmwh/data-docs/<path>``: the Data Docs site for the roles that may read it."""
    from urllib.parse import quote

    from flask import abort, redirect, request, send_file

    allowed = set(app.config.get("CRMWH_DATA_DOCS_ROLES") or ())

    def data_docs(subpath: str = ""):  # noqa: ANN202
        root_env = os.environ.get(DATA_DOCS_DIR_ENV, "")
        public = subpath.split("/", 1)[0] == PUBLIC_DOCS_FOLDER
        if not public:
            user = _docs_user()
            if user is None:
                if request.headers.get("Authorization"):
                    abort(401)
                return redirect("/login/?next=" + quote(f"{DATA_DOCS_PREFIX}/{subpath}", safe=""))
            if not {role.name for role in user.roles} & allowed:
                abort(403)
        if not root_env:
            abort(404, description="the Data Docs folder is not configured for this server")
        path = resolve_docs_file(Path(root_env), subpath)
        if path is None:
            abort(404)
        response = send_file(path, max_age=0)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    def data_docs_root():  # noqa: ANN202
        return redirect(f"{DATA_DOCS_PREFIX}/")

    data_docs.talisman_view_options = {  # type: ignore[attr-defined]
        "content_security_policy": DATA_DOCS_CSP,
        "content_security_policy_nonce_in": [],
    }
    app.add_url_rule(DATA_DOCS_PREFIX, "crmwh_data_docs_root", data_docs_root)
    app.add_url_rule(f"{DATA_DOCS_PREFIX}/", "crmwh_data_docs", data_docs)
    app.add_url_rule(f"{DATA_DOCS_PREFIX}/<path:subpath>", "crmwh_data_docs_path", data_docs)


def install(app: Any) -> None:
    """Everything above that runs inside the web server."""
    install_login_throttle(app)
    install_data_docs(app)
