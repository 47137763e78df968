"""The pieces of an OAuth sign-in test that are not the provider itself.

- :class:`LoopbackServer`: an HTTP server on ``127.0.0.1`` and a free port, answering
  from a thread with a handler function (fake providers, tampering proxies).
- :class:`ProviderBrowser`: the user's browser at a provider. It follows redirects,
  fills in the provider's login and consent forms, and stops at the first hop back to
  the app, which the test then sends to the app itself.
- The app: :func:`oauth_app` puts an :class:`~asgi_session.AuthConfig` in front of a
  small Starlette app; :func:`app_client` talks to it in-process as ``APP_ORIGIN``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from tests.support.apps import client_for, csrf_token, show_session

#: Where the app under test lives, as the browser sees it.
APP_ORIGIN = "http://app.test"
#: The app's host, which its configuration must allow (it is not a loopback name).
APP_HOSTS = ["app.test"]


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    form: dict[str, str]


@dataclass
class Reply:
    """An answer: ``body`` is JSON unless it is ``bytes``."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)


class DropConnection(Exception):
    """Raised by a handler to close the connection without answering."""


Handler = Callable[[Request], Reply]


class LoopbackServer:
    """An HTTP server on ``127.0.0.1`` and a free port, answering from a thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._request_handler())
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    form=dict(parse_qsl(body)),
                )
                try:
                    reply = outer.handler(request)
                except DropConnection:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                headers = dict(reply.headers)
                if not isinstance(reply.body, bytes):
                    headers.setdefault("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Handler

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# -- the browser at the provider ---------------------------------------------------


@dataclass
class _Form:
    action: str
    method: str
    inputs: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """The forms and links of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                _Form(attributes.get("action", ""), attributes.get("method", "get").upper())
            )
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1].inputs[attributes["name"]] = attributes.get("value", "")
        elif tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])


@dataclass
class Landing:
    """The browser's request back to the app: a redirect (GET) or a form_post (POST)."""

    method: str
    url: str
    data: dict[str, str] = field(default_factory=dict)


class ProviderBrowser:
    """A user's browser at the provider, with its own cookie jar (the provider session)."""

    def __init__(self, app_origin: str = APP_ORIGIN) -> None:
        self.app_origin = app_origin
        self.client = httpx2.AsyncClient(timeout=10, follow_redirects=False)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def authorize(
        self, url: str, *, login: str = "alice", password: str = "secret", cancel: bool = False
    ) -> Landing:
        """Follow ``url`` through the provider's pages until it sends the browser back.

        ``login`` is typed into the login form; ``cancel`` clicks its cancel link instead.
        """
        method, data = "GET", None
        for _ in range(20):
            if url.startswith(self.app_origin):
                return Landing(method, url, data or {})
            if method == "POST":
                response = await self.client.post(url, data=data)
            else:
                response = await self.client.get(url)
            if response.is_redirect:
                url = urljoin(str(response.url), response.headers["location"])
                method, data = "GET", None
                continue
            if response.status_code != 200 or "html" not in response.headers.get(
                "content-type", ""
            ):
                raise AssertionError(
                    f"the provider answered {response.status_code}: {response.text[:500]}"
                )
            page = _PageParser()
            page.feed(response.text)
            if not page.forms:
                raise AssertionError(f"no form on the provider's page: {response.text[:500]}")
            form = page.forms[0]
            action = urljoin(str(response.url), form.action)
            fields = dict(form.inputs)
            if "login" in fields:
                if cancel:
                    abort = next(link for link in page.links if "/abort" in link)
                    url, method, data = urljoin(str(response.url), abort), "GET", None
                    continue
                fields.update(login=login, password=password)
            url, method, data = action, form.method, fields
        raise AssertionError("the provider never sent the browser back to the app")


# -- the app ------------------------------------------------------------------------


async def _dashboard(request: StarletteRequest) -> Response:
    return PlainTextResponse("dashboard")


def oauth_app(config: AuthConfig) -> Starlette:
    """A Starlette app behind ``config``: ``/`` shows the session, ``/dashboard`` a page."""
    routes = [Route("/", show_session), Route("/dashboard", _dashboard)]
    return Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])


def app_client(app: Any) -> httpx2.AsyncClient:
    """A client (one browser's cookie jar) talking to ``app`` in-process as APP_ORIGIN."""
    return client_for(app, base_url=APP_ORIGIN)


async def begin_sign_in(
    client: httpx2.AsyncClient, provider_id: str, *, callback_url: str = "/dashboard"
) -> httpx2.Response:
    """POST the sign-in form for ``provider_id``, as the sign-in page's button does."""
    token = await csrf_token(client)
    return await client.post(
        f"/auth/signin/{provider_id}", data={"csrfToken": token, "callbackUrl": callback_url}
    )


async def land(client: httpx2.AsyncClient, landing: Landing) -> httpx2.Response:
    """Deliver the provider's answer to the app: the callback request."""
    if landing.method == "POST":
        return await client.post(landing.url, data=landing.data)
    return await client.get(landing.url)


async def session_of(client: httpx2.AsyncClient) -> Any:
    """What the app's ``/`` shows: the session JSON plus ``id``, or ``None``."""
    response = await client.get("/")
    assert response.status_code == 200
    return response.json()


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url``."""
    return dict(parse_qsl(urlsplit(url).query))


def with_query(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (``None`` removes one)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return parts._replace(query=urlencode(params)).geturl()


def error_of(response: httpx2.Response) -> tuple[str, str | None]:
    """Where a failed sign-in sent the browser: the page's path and its ``error``."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    return urlsplit(location).path, query_of(location).get("error")


def cookie_headers(response: httpx2.Response) -> dict[str, str]:
    """``Set-Cookie`` headers of a response by cookie name."""
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found
