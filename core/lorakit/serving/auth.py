"""An API key for a server others can reach (``lorakit serve --api-key``).

Requests carry it as OpenAI's clients send theirs (``Authorization: Bearer
KEY``), or, from the web page, in the cookie the page sets once the key is
typed in (a browser sends it with every request of the page, run reports and
their audio included; ``SameSite=Strict``, so another site's page cannot use
it). Open without a key: the page itself, so it can ask for one, and
``/healthz`` for load balancers. Everything else (models, run files, the
voices themselves) answers 401 in OpenAI's error shape.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import unquote

from starlette.requests import cookie_parser
from starlette.responses import JSONResponse

#: The cookie the web page keeps the key in.
COOKIE = "lorakit_api_key"
#: Paths answered without a key.
OPEN_PATHS = frozenset({"/", "/favicon.ico", "/healthz"})


class RequireKey:
    """ASGI middleware: requests outside ``OPEN_PATHS`` must carry ``key``."""

    def __init__(self, app: Any, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = given_key(scope)
        if given is not None and hmac.compare_digest(given.encode(), self.key):
            await self.app(scope, receive, send)
            return
        message = ("this server needs its API key: send Authorization: Bearer KEY (an OpenAI client's api_key)"
                   if given is None else "the API key is not this server's")
        await _refusal(message, "invalid_api_key", 401, {"WWW-Authenticate": "Bearer"})(scope, receive, send)


def _refusal(message: str, code: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal in OpenAI's error shape."""
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
                        status_code=status, headers=headers)


def given_key(scope: dict) -> str | None:
    """The key a request carries: its bearer token, else the page's cookie."""
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    cookie = cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(COOKIE)
    return unquote(cookie) if cookie else None  # the page writes it URI-encoded


#: Names by which a server on this machine is addressed.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class LoopbackNamesOnly:
    """ASGI middleware for a server listening on this machine without a key:
    only requests addressed to it by a loopback name are answered. A web page
    the user visits can point its own host name at 127.0.0.1 (DNS
    rebinding) and read the runs, the recordings and the models' answers as
    its own origin; its requests still name its host in ``Host``."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").strip().lower()
        name = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
        if name in LOOPBACK_NAMES:
            await self.app(scope, receive, send)
            return
        message = (f"this server answers requests addressed to localhost or 127.0.0.1 only, not {host or 'no host'}; "
                   "to serve it under other names, start it with --api-key")
        await _refusal(message, "host_not_allowed", 403)(scope, receive, send)
