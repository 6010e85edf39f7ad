"""The Dagster UI as ``crmwh serve`` runs it: ``dagster-webserver`` behind a request guard.

``python -m pipelines.lib.dagster_ui <dagster-webserver options>`` runs Dagster's own
command line, with the web application wrapped in ``RequestGuard`` (an ASGI middleware).
Dagster answers GraphQL over ``GET /graphql?query=…`` and over ``POST`` with any content
type, mutations included, and checks neither ``Host`` nor ``Origin``: any web page the
engineer opens could launch runs, wipe assets or delete runs through the browser. In
``--read-only`` mode Dagster refuses the permission-checked mutations (launching,
wiping, deleting, schedules and sensors) but still executes the rest. The guard
refuses, whatever the mode:

- a ``Host`` that is not this server (``127.0.0.1``/``localhost``/``[::1]`` on its port,
  or a name in ``CRMWH_DAGSTER_ALLOWED_HOSTS`` for a reverse proxy): DNS rebinding;
- an ``Origin`` of another site (browsers send it with every cross-site fetch, POST and
  WebSocket handshake);
- a GraphQL mutation over ``GET`` (a link, an ``<img>``, a prefetch);
- a ``POST`` with a content type a cross-site form may send without a preflight
  (``application/x-www-form-urlencoded``, ``multipart/form-data``, ``text/plain``).

The Dagster UI itself sends JSON from its own origin and is not affected.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

ALLOWED_HOSTS_ENV = "CRMWH_DAGSTER_ALLOWED_HOSTS"
SIMPLE_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def local_hosts(port: int) -> set[str]:
    """The ``Host`` values of a server bound to the loopback on ``port``."""
    return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


def has_mutation(query: str) -> bool:
    """Whether the GraphQL document ``query`` holds a mutation (unparsable: True)."""
    from graphql import GraphQLError, OperationType, parse
    from graphql.language import OperationDefinitionNode

    try:
        document = parse(query)
    except GraphQLError:
        return True
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
        for d in document.definitions
    )


class RequestGuard:
    """ASGI middleware refusing what the module docstring lists (403/405/415)."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed_hosts: Collection[str]):
        self.app = app
        self.allowed_hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").strip().lower()
        if host not in self.allowed_hosts:
            return 403, f"Host {host!r} is not this server (see {ALLOWED_HOSTS_ENV})"
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or parts.netloc.lower() not in (
                self.allowed_hosts
            ):
                return 403, f"requests from {origin!r} are refused"
        if scope["type"] != "http":
            return None
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        if method == "GET" and path.rstrip("/").endswith("/graphql"):
            params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if any(has_mutation(q) for q in params.get("query", [])):
                return 405, "GraphQL mutations are accepted over POST with JSON only"
        if method not in ("GET", "HEAD", "OPTIONS"):
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type in SIMPLE_CONTENT_TYPES:
                return 415, f"{content_type} is not accepted: send application/json"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message = problem
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = (message + "\n").encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def allowed_hosts(port: int, extra: str | None = None) -> set[str]:
    """This server's own host names on ``port`` plus the comma-separated ``extra``
    (default: ``CRMWH_DAGSTER_ALLOWED_HOSTS``)."""
    extra = os.environ.get(ALLOWED_HOSTS_ENV, "") if extra is None else extra
    return local_hosts(port) | {h.strip().lower() for h in extra.split(",") if h.strip()}


def main(argv: list[str] | None = None) -> None:
    """Run ``dagster-webserver`` with ``argv`` (its own options), guarded."""
    import dagster_webserver.cli as webserver_cli

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-p", "--port", type=int, default=3000)
    port = parser.parse_known_args(argv)[0].port
    hosts = allowed_hosts(port)
    create_app = webserver_cli.create_app_from_workspace_process_context

    def guarded_app(*args: Any, **kwargs: Any) -> RequestGuard:
        return RequestGuard(create_app(*args, **kwargs), hosts)

    webserver_cli.create_app_from_workspace_process_context = guarded_app
    sys.argv = ["dagster-webserver", *argv]
    webserver_cli.main()


if __name__ == "__main__":
    main()
