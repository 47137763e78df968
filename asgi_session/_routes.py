"""The ``/auth/*`` endpoints, shaped like Auth.js's: sign-in, callbacks, sign-out, session, csrf."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import Receive, Scope, Send

from asgi_session import _answers as answers
from asgi_session import _pages as pages
from asgi_session import _ratelimit as ratelimit
from asgi_session import _second_factor as second_factor
from asgi_session._answers import NO_STORE
from asgi_session._config import AuthConfig
from asgi_session._context import RequestContext
from asgi_session._cookies import CookieSpec
from asgi_session._mfa_routes import MfaRoutes
from asgi_session._password_routes import PasswordRoutes
from asgi_session._redirects import resolve_redirect
from asgi_session._session import Session, isoformat
from asgi_session._signin import complete_sign_in, may_sign_in
from asgi_session.errors import (
    BackendUnavailableError,
    ConfigurationError,
    CookieTooLargeError,
    CredentialsSignin,
    SignInError,
    UnsupportedOperationError,
)
from asgi_session.management import session_infos
from asgi_session.providers._base import Identity, Provider
from asgi_session.providers._password import Password

logger = logging.getLogger("asgi_session")

#: Bodies of auth POSTs are small forms; refuse anything larger unread.
MAX_BODY_SIZE = 64 * 1024
_MAX_FIELDS = 64
#: On every answer under ``base_path``: nothing here may be cached (answers depend on
#: cookies, and a shared cache must never replay one), sniffed into another type, or
#: name its URL to another site. ``same-origin`` rather than ``no-referrer``: under
#: ``no-referrer`` a page's own form posts carry ``Origin: null``, which the
#: cross-site check must refuse in browsers that send no ``Sec-Fetch-Site``.
_EVERY_RESPONSE = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes whose GET uses up a one-time code or link: HEAD must not.
_SPENDS_LINKS = frozenset({"callback"})
#: Routes taking a second segment (``/signin/<provider>``, ``/password/reset``...).
_TAKES_A_STEP = frozenset(
    {"signin", "callback", "sessions", "password", "mfa", "account", "webauthn-options"}
)
_UNTRUSTED_HOST = (
    "Bad Request: this host is not one the app answers to. If it is the app's, list it "
    "in AuthConfig(allowed_hosts=[...]), set AuthConfig(url=...) / AUTH_URL, or behind a "
    "proxy that sets X-Forwarded-Host, trust_host=True (AUTH_TRUST_HOST=true)."
)
_CROSS_SITE = (
    "Forbidden: the browser says this request comes from another site's page. If that "
    "page is the app's own front end, list its origin in AuthConfig(trusted_origins=[...])."
)

Form = dict[str, Any]
Handler = Callable[["AuthRequest"], Awaitable[Response]]


class BodyTooLarge(Exception):
    """A private signal: the body is over :data:`MAX_BODY_SIZE` (answered with 413 here)."""


class AuthRequest:
    """One request to an auth route: the Starlette request, its context and parsed body.

    It is what providers see as :class:`~asgi_session.providers.ProviderRequest`.
    """

    def __init__(self, request: Request, ctx: RequestContext, provider_id: str | None) -> None:
        self.request = request
        self.context = ctx
        self.provider_id = provider_id
        self.form: Form = {}
        #: Set when the body could not be read (a malformed length, a client that left).
        self.body_unreadable = False
        #: Whether the body was JSON (else a form, or nothing).
        self.is_json = False
        #: Jobs to run once the answer has been sent (see :meth:`defer`).
        self.deferred: list[Callable[[], Awaitable[object]]] = []

    @property
    def config(self) -> AuthConfig:
        return self.context.config

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    async def read_body(self) -> None:
        """Parse a form or JSON body, refusing oversized ones; garbage reads as empty.

        A ``Content-Length`` that is not plain digits, or a client that disconnects
        mid-body, sets :attr:`body_unreadable` (answered 400, nothing logged as an error).
        """
        length = self.request.headers.get("content-length")
        if length is not None:
            # str.isdigit() accepts "²" and other digits int() refuses.
            if not (length.isascii() and length.isdigit()):
                self.body_unreadable = True
                return
            # Length first: int() refuses thousands of digits.
            if len(length) > 12 or int(length) > MAX_BODY_SIZE:
                raise BodyTooLarge
        body = bytearray()
        try:
            async for chunk in self.request.stream():
                body += chunk
                if len(body) > MAX_BODY_SIZE:
                    raise BodyTooLarge
        except ClientDisconnect:
            self.body_unreadable = True
            return
        content_type = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        text = body.decode("utf-8", "replace")
        self.is_json = content_type == "application/json"
        if self.is_json:
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
            try:
                json.dumps(parsed, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                # JSON may escape a lone surrogate, which no page or header can carry:
                # text no client means, refused whole (400).
                self.body_unreadable = True
                return
            self.form = parsed if isinstance(parsed, dict) else {}
        else:
            try:
                pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
            except ValueError:
                pairs = []
            self.form = dict(pairs)

    def field(self, name: str) -> str | None:
        value = self.form.get(name)
        return value if isinstance(value, str) else None

    def csrf_verified(self) -> bool:
        return self.context.csrf_verified(self.form.get("csrfToken"))

    def defer(self, job: Callable[[], Awaitable[object]]) -> None:
        self.deferred.append(job)

    async def run_deferred(self) -> None:
        """The deferred jobs, after the answer: a failure is logged, never raised (the
        server would log an attacker's bad address as an error of the app)."""
        for job in self.deferred:
            try:
                await job()
            except BackendUnavailableError:
                # No client causes this one: the link or account it was to store is lost.
                logger.exception("a job run after an auth answer could not reach the store")
            except Exception:
                logger.warning("a job run after an auth answer failed", exc_info=True)

    async def session(self) -> Session | None:
        return await self.context.load_session()

    async def may_sign_in(self, identity: Identity) -> str | None:
        return await may_sign_in(self.context, identity)

    async def callback_url(self, requested: str | None, spec: CookieSpec | None = None) -> str:
        ctx = self.context
        url = await resolve_redirect(ctx, requested or ctx.stored_callback_url())
        if requested or spec is not None:
            ctx.remember_callback_url(url, spec)
        return url

    # -- answers ---------------------------------------------------------------------

    def redirect(self, url: str) -> Response:
        """A 302 to ``url``, or ``{"url": ...}`` for clients that asked for JSON."""
        if self.request.headers.get("x-auth-return-redirect") == "1":
            return JSONResponse({"url": url})
        return RedirectResponse(url, status_code=302)

    def sign_in_error(self, error: str, code: str | None = None) -> Response:
        """Back to the sign-in page, showing ``error`` (and Auth.js's ``code``)."""
        pages = self.config.pages
        return self.redirect(self.context.page_url(pages.sign_in, "signin", error=error, code=code))

    def error(self, error: str) -> Response:
        """To the error page for ``error``."""
        return self.redirect(self.context.page_url(self.config.pages.error, "error", error=error))

    def refused(self, exc: SignInError) -> Response:
        """Where a refused sign-in goes: the page its error belongs on."""
        if exc.page == "error":
            return self.error(exc.error)
        return self.sign_in_error(exc.error, exc.code)


class AuthRoutes:
    """Dispatches ``<base_path>/<action>[/<provider>]`` to its handler."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._warned_untrusted_host = False
        #: The app's rate limits, counted for every door (the password routes' too).
        self.limiter = ratelimit.Limiter(
            config.rate_limits,
            config.rate_limit_store,
            trust_host=config.trust_host,
            trusted_proxies=config.trusted_proxies,
        )
        self._handlers: dict[tuple[str, str], Handler] = {
            ("GET", "session"): self.get_session,
            ("POST", "session"): self.post_session,
            ("GET", "csrf"): self.get_csrf,
            ("GET", "providers"): self.get_providers,
            ("GET", "signin"): self.get_sign_in,
            ("POST", "signin"): self.post_sign_in,
            ("GET", "callback"): self.callback,
            ("POST", "callback"): self.callback,
            ("GET", "signout"): self.get_sign_out,
            ("POST", "signout"): self.post_sign_out,
            ("GET", "error"): self.get_error,
            ("GET", "verify-request"): self.get_verify_request,
            ("GET", "sessions"): self.get_sessions,
            ("POST", "sessions"): self.post_sessions,
        }
        if config.bearer_tokens:
            self._handlers[("POST", "token")] = self.post_token
            self._handlers[("DELETE", "token")] = self.delete_token
        for provider in config.providers.values():
            if isinstance(provider, Password):  # at most one, checked at start-up
                self._handlers.update(PasswordRoutes(self, provider).handlers())
        self.mfa = MfaRoutes(self)
        self._handlers.update(self.mfa.handlers())

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, action: str
    ) -> None:
        name, _, provider_id = action.partition("/")
        request = Request(scope, receive)
        method = request.method
        # HEAD reads pages, but must never spend a callback's one-time code or link.
        if method == "HEAD" and name not in _SPENDS_LINKS:
            method = "GET"
        handler = self._handlers.get((method, name))
        response: Response
        if not ctx.host_allowed():
            response = self._untrusted_host(ctx)
        elif method not in _SAFE_METHODS and self._cross_site(ctx, name, provider_id):
            response = PlainTextResponse(_CROSS_SITE, status_code=403)
        elif provider_id and name not in _TAKES_A_STEP:
            response = PlainTextResponse("Not Found", status_code=404)
        elif handler is None:
            known = any(key[1] == name for key in self._handlers)
            response = PlainTextResponse(
                "Method Not Allowed" if known else "Not Found", status_code=405 if known else 404
            )
        else:
            auth_request = AuthRequest(request, ctx, provider_id or None)
            response = await self._run(handler, auth_request)
            if auth_request.deferred:
                response.background = BackgroundTask(auth_request.run_deferred)
        ctx.close()
        raw = response.raw_headers
        # The raw list, not MutableHeaders: /auth/session is polled by every open tab.
        present = {key for key, _ in raw}
        raw.extend(header for header in _EVERY_RESPONSE if header[0] not in present)
        raw.extend((b"set-cookie", cookie.encode("latin-1")) for cookie in ctx.set_cookies)
        raw.extend(ctx.issued_headers())
        await response(scope, receive, send)

    def _untrusted_host(self, ctx: RequestContext) -> Response:
        if not self._warned_untrusted_host:
            # Once per process: anyone can send any Host, and each one is not news.
            self._warned_untrusted_host = True
            logger.warning(
                "refused a request for the host %r, which is not one the app answers to "
                "(set AuthConfig(allowed_hosts=[...]) or url=...); further ones are "
                "refused without a warning",
                ctx.request_host()[:100],
            )
        return PlainTextResponse(_UNTRUSTED_HOST, status_code=400)

    def _cross_site(self, ctx: RequestContext, name: str, provider_id: str) -> bool:
        if ctx.bearer:
            # Nothing ambient: a bearer request carries its credential itself. (POST
            # /auth/token is checked: no page elsewhere may make visitors guess passwords.)
            return False
        if name == "callback":
            provider = self.config.provider(provider_id)
            if provider is not None and not provider.posts_to_callback:
                # OAuth's form_post callback is posted by the provider's page: state
                # and PKCE protect it, and a cross-site check would refuse every one.
                return False
        return ctx.cross_site()

    async def _run(self, handler: Handler, auth: AuthRequest) -> Response:
        try:
            if auth.method == "POST":
                await auth.read_body()
                if auth.body_unreadable:
                    return PlainTextResponse("Bad Request: unreadable body", status_code=400)
            return await handler(auth)
        except BodyTooLarge:
            return PlainTextResponse("Request body too large", status_code=413)
        except BackendUnavailableError:
            auth.context.set_cookies.clear()
            return answers.service_unavailable()
        except UnsupportedOperationError as exc:
            # The strategy cannot do what was asked (end one JWT bearer token, no store).
            auth.context.set_cookies.clear()
            return JSONResponse({"error": str(exc)}, status_code=501, headers=NO_STORE)
        except CookieTooLargeError:
            logger.exception("the session cookie is too large to issue")
            auth.context.set_cookies.clear()
            return auth.error("Configuration")

    # -- session, csrf, providers ----------------------------------------------

    async def get_session(self, auth: AuthRequest) -> Response:
        session = await auth.context.load_session()
        if session is None:
            return JSONResponse(None, headers=NO_STORE)
        body = session.to_dict()
        await self.config.events.emit("session", session=body, token=session.claims)
        return JSONResponse(body, headers=NO_STORE)

    async def post_session(self, auth: AuthRequest) -> Response:
        if not auth.csrf_verified():
            return JSONResponse({"error": "MissingCSRF"}, status_code=403, headers=NO_STORE)
        session = await auth.context.load_session()
        if session is None:
            return JSONResponse(None, headers=NO_STORE)
        limited = await self._session_limited(auth, "update", session)
        if limited is not None:
            return limited
        data = auth.form.get("data")
        update = data if isinstance(data, dict) else {}
        updated = await self.config.strategy.update(auth.context, session, update, trusted=False)
        return JSONResponse(None if updated is None else updated.to_dict(), headers=NO_STORE)

    async def get_csrf(self, auth: AuthRequest) -> Response:
        return JSONResponse({"csrfToken": auth.context.csrf_token()}, headers=NO_STORE)

    async def get_providers(self, auth: AuthRequest) -> Response:
        ctx = auth.context
        return JSONResponse(
            {
                provider.id: {
                    "id": provider.id,
                    "name": provider.name,
                    "type": provider.type,
                    "signinUrl": ctx.auth_url(f"signin/{provider.id}"),
                    "callbackUrl": ctx.auth_url(f"callback/{provider.id}"),
                }
                for provider in self.config.providers.values()
            }
        )

    # -- sign in ---------------------------------------------------------------

    def _form_action(self, auth: AuthRequest, provider: Provider) -> str:
        action = "callback" if provider.posts_to_callback else "signin"
        return auth.context.auth_url(f"{action}/{provider.id}")

    async def get_sign_in(self, auth: AuthRequest) -> Response:
        params = auth.query
        callback_url = await auth.callback_url(params.get("callbackUrl"))
        error = params.get("error")
        if self.config.pages.sign_in:
            return RedirectResponse(
                auth.context.page_url(
                    self.config.pages.sign_in,
                    "signin",
                    callbackUrl=callback_url,
                    error=error,
                    code=params.get("code"),
                ),
                status_code=302,
            )
        nonce = answers.nonce()
        html = pages.sign_in_page(
            [
                (provider, self._form_action(auth, provider), provider.form_links(auth.context))
                for provider in self.config.providers.values()
            ],
            csrf_token=auth.context.csrf_token(),
            callback_url=callback_url,
            error=error[:64] if error else None,
            nonce=nonce,
            passkey=self.mfa.passkey_button(
                auth, "Sign in with a passkey", "authenticate", callback_url
            ),
        )
        return answers.page(html, nonce)

    async def post_sign_in(self, auth: AuthRequest) -> Response:
        provider = self.config.provider(auth.provider_id or "")
        if provider is None:
            return (
                auth.sign_in_error("SignInError")
                if auth.provider_id
                else auth.redirect(auth.context.auth_url("signin"))
            )
        if not auth.csrf_verified():
            return auth.sign_in_error("MissingCSRF")
        # Counted before the provider runs: a refused request mails and stores nothing.
        limited = await self._start_limited(auth, provider)
        if limited is not None:
            return limited
        try:
            url = await provider.begin_sign_in(auth)
        except SignInError as exc:
            return auth.refused(exc)
        # A provider without this step (credentials) signs in from the sign-in page.
        return auth.redirect(url if url is not None else auth.context.auth_url("signin"))

    async def callback(self, auth: AuthRequest) -> Response:
        response = await self._callback(auth)
        # A callback URL may carry a one-time token (a magic link's, an OAuth code):
        # wherever the browser goes next must not learn it.
        response.headers["referrer-policy"] = "no-referrer"
        return response

    async def _callback(self, auth: AuthRequest) -> Response:
        provider = self.config.provider(auth.provider_id or "")
        if provider is None:
            return (
                auth.error("Configuration")
                if auth.provider_id
                else auth.sign_in_error("SignInError")
            )
        attempt = ratelimit.NOT_COUNTED
        if provider.posts_to_callback:
            # The sign-in form itself posts here: a form needs the double-submit token.
            if auth.method != "POST":
                return PlainTextResponse("Method Not Allowed", status_code=405)
            if not auth.csrf_verified():
                return auth.sign_in_error("MissingCSRF")
            attempt = await self.limiter.sign_in_attempt(
                auth.request.scope, provider.rate_limit_identifier(auth), auth.context.now
            )
            if attempt.retry_after is not None:
                # Even the right password: refusing it is what stops the guessing.
                return self._rate_limited(auth, attempt.retry_after)
        try:
            identity = await self._authenticate(auth, provider, attempt)
            return auth.redirect(await complete_sign_in(auth.context, identity))
        except SignInError as exc:
            requested = auth.field("callbackUrl") if provider.posts_to_callback else None
            if requested:
                # Back on a sign-in page of the app's own, the next try must still end
                # where this one was going: kept as Auth.js keeps any posted callbackUrl.
                await auth.callback_url(requested)
            return auth.refused(exc)
        except ConfigurationError:
            logger.exception("the %s provider cannot sign this user in", provider.id)
            return auth.error("Configuration")

    # -- sign out --------------------------------------------------------------

    async def get_sign_out(self, auth: AuthRequest) -> Response:
        ctx = auth.context
        callback_url = await resolve_redirect(ctx, auth.query.get("callbackUrl"))
        if self.config.pages.sign_out:
            return RedirectResponse(
                ctx.page_url(self.config.pages.sign_out, "signout", callbackUrl=callback_url),
                status_code=302,
            )
        nonce = answers.nonce()
        html = pages.sign_out_page(
            action=ctx.auth_url("signout"),
            csrf_token=ctx.csrf_token(),
            callback_url=callback_url,
            nonce=nonce,
        )
        return answers.page(html, nonce)

    async def post_sign_out(self, auth: AuthRequest) -> Response:
        if not auth.csrf_verified():
            return auth.sign_in_error("MissingCSRF")
        ctx = auth.context
        session = await ctx.load_session()
        await self.config.strategy.destroy(ctx, session)
        ctx.set_session(None)
        if session is not None:
            await self.config.events.emit(
                "sign_out", session=session.to_dict(), token=session.claims
            )
        return auth.redirect(await resolve_redirect(ctx, auth.field("callbackUrl")))

    # -- bearer tokens (AuthConfig(bearer_tokens=True)) ---------------------------

    async def post_token(self, auth: AuthRequest) -> Response:
        """Sign in with a credentials provider's fields, for a token instead of a cookie:
        the session a ``Cookie`` would carry, in the ``Authorization`` header."""
        ctx = auth.context
        if not auth.is_json:
            # JSON alone: a page elsewhere cannot post it without asking CORS first.
            return JSONResponse(
                {"error": "UnsupportedMediaType", "message": "send the fields as JSON"},
                status_code=415,
                headers=NO_STORE,
            )
        sealed = auth.field("challenge")
        if sealed is not None and self.config.two_factor is not None:
            # The second step of a sign-in the first one held for its second factor.
            ctx.use_bearer(None)
            return await self._token_second_factor(auth, sealed)
        provider = self.config.provider(auth.field("provider") or "")
        if provider is None or not provider.posts_to_callback:
            return JSONResponse(
                {
                    "error": "UnknownProvider",
                    "message": "provider must name a credentials or password provider",
                },
                status_code=400,
                headers=NO_STORE,
            )
        ctx.use_bearer(None)
        attempt = await self.limiter.sign_in_attempt(
            auth.request.scope, provider.rate_limit_identifier(auth), ctx.now
        )
        if attempt.retry_after is not None:
            return answers.too_many(attempt.retry_after)
        try:
            identity = await self._authenticate(auth, provider, attempt)
            await complete_sign_in(ctx, identity)
        except CredentialsSignin as exc:
            body = {"error": exc.error, "code": exc.code}
            return JSONResponse(body, status_code=401, headers=NO_STORE)
        except SignInError as exc:
            return JSONResponse({"error": exc.error}, status_code=403, headers=NO_STORE)
        except ConfigurationError:
            logger.exception("the %s provider cannot sign this user in", provider.id)
            return JSONResponse({"error": "Configuration"}, status_code=500, headers=NO_STORE)
        return self._issued_token(ctx)

    def _issued_token(self, ctx: RequestContext) -> Response:
        if ctx.issued is None:
            if ctx.challenge is not None:
                # A second factor is due: send the code back with this challenge.
                body = {"error": "TwoFactorRequired", "challenge": ctx.challenge}
                return JSONResponse(body, status_code=401, headers=NO_STORE)
            # The sign_in callback sent the sign-in elsewhere: no session was started.
            return JSONResponse({"error": "AccessDenied"}, status_code=403, headers=NO_STORE)
        token, expires = ctx.issued
        return JSONResponse({"token": token, "expires": isoformat(expires)}, headers=NO_STORE)

    async def _token_second_factor(self, auth: AuthRequest, sealed: str) -> Response:
        """``POST /token`` with the ``challenge`` a first one answered and a ``code``."""
        ctx = auth.context
        challenge = second_factor.open_challenge(ctx, sealed)
        if challenge is None:
            body = {"error": "TwoFactorExpired", "message": "sign in again"}
            return JSONResponse(body, status_code=401, headers=NO_STORE)
        outcome = await self.mfa.answer_challenge(auth, challenge, auth.field("code") or "")
        if isinstance(outcome, tuple):
            error, retry_after = outcome
            if retry_after is not None:
                return answers.too_many(retry_after)
            return JSONResponse({"error": error}, status_code=401, headers=NO_STORE)
        return self._issued_token(ctx)

    async def delete_token(self, auth: AuthRequest) -> Response:
        """End the session of the request's bearer token."""
        ctx = auth.context
        session = await ctx.load_session() if ctx.bearer else None
        if session is None:
            return JSONResponse({"error": "SessionRequired"}, status_code=401, headers=NO_STORE)
        try:
            await self.config.strategy.destroy(ctx, session)
        except UnsupportedOperationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=501, headers=NO_STORE)
        await self.config.events.emit("sign_out", session=session.to_dict(), token=session.claims)
        return JSONResponse({"ok": True}, headers=NO_STORE)

    # -- a user's sessions ------------------------------------------------------

    async def _signed_in(self, auth: AuthRequest) -> Session | Response:
        session = await auth.context.load_session()
        if session is None or session.user.id is None:
            return JSONResponse({"error": "SessionRequired"}, status_code=401, headers=NO_STORE)
        return session

    async def get_sessions(self, auth: AuthRequest) -> Response:
        """The signed-in user's sessions (database strategy)."""
        if auth.provider_id:
            return PlainTextResponse("Not Found", status_code=404)
        session = await self._signed_in(auth)
        if isinstance(session, Response):
            return session
        assert session.user.id is not None
        try:
            records = await self.config.strategy.list_user_sessions(
                session.user.id, now=auth.context.now
            )
        except UnsupportedOperationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=501, headers=NO_STORE)
        infos = session_infos(records, session)
        return JSONResponse([info.to_dict() for info in infos], headers=NO_STORE)

    async def post_sessions(self, auth: AuthRequest) -> Response:
        """``/sessions/revoke`` (one, by ``id``) and ``/sessions/revoke-others``."""
        if auth.provider_id not in ("revoke", "revoke-others"):
            return PlainTextResponse("Not Found", status_code=404)
        if not auth.csrf_verified():
            return JSONResponse({"error": "MissingCSRF"}, status_code=403, headers=NO_STORE)
        session = await self._signed_in(auth)
        if isinstance(session, Response):
            return session
        limited = await self._session_limited(auth, "revoke", session)
        if limited is not None:
            return limited
        try:
            if auth.provider_id == "revoke-others":
                await auth.context.end_other_sessions(session)
                return JSONResponse({"ok": True}, headers=NO_STORE)
            session_id = auth.field("id")
            ended = bool(session_id) and await auth.context.end_session(session, session_id or "")
        except UnsupportedOperationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=501, headers=NO_STORE)
        return JSONResponse({"ok": ended}, status_code=200 if ended else 404, headers=NO_STORE)

    # -- rate limits -------------------------------------------------------------

    async def _start_limited(self, auth: AuthRequest, provider: Provider) -> Response | None:
        """Count the start of a sign-in (a mailed link, a trip to an OAuth server): the
        answer when that is over a limit."""
        counted = await self.limiter.sign_in_start(
            auth.request.scope,
            provider.type,
            provider.rate_limit_identifier(auth),
            auth.context.now,
        )
        if counted.retry_after is None:
            return None
        return self._rate_limited(auth, counted.retry_after)

    async def _authenticate(
        self, auth: AuthRequest, provider: Provider, attempt: ratelimit.Counted
    ) -> Identity:
        """The provider's answer; the attempt counts unless it succeeds (a refusal of
        any kind, or an ``authorize`` that fails, is a guess that did not get in)."""
        identity = await provider.authenticate(auth)
        await self.limiter.take_back(attempt, auth.context.now)
        return identity

    async def _session_limited(
        self, auth: AuthRequest, change: Literal["update", "revoke"], session: Session
    ) -> Response | None:
        counted = await self.limiter.session_change(change, session, auth.context.now)
        return None if counted.retry_after is None else answers.too_many(counted.retry_after)

    def _rate_limited(self, auth: AuthRequest, retry_after: int) -> Response:
        """A form route's answer to a limited request: back to the sign-in page; a 429
        for clients that asked for JSON (``next-auth/react`` reads ``error`` from ``url``)."""
        if auth.request.headers.get("x-auth-return-redirect") == "1":
            url = auth.context.page_url(self.config.pages.sign_in, "signin", error="RateLimited")
            return answers.too_many(retry_after, url=url)
        response = auth.sign_in_error("RateLimited")
        response.headers["Retry-After"] = str(retry_after)
        return response

    # -- pages -----------------------------------------------------------------

    async def get_error(self, auth: AuthRequest) -> Response:
        error = auth.query.get("error")
        if self.config.pages.error:
            return RedirectResponse(
                auth.context.page_url(self.config.pages.error, "error", error=error),
                status_code=302,
            )
        nonce = answers.nonce()
        html, status = pages.error_page(error, home_url=auth.context.base_url() + "/", nonce=nonce)
        return answers.page(html, nonce, status)

    async def get_verify_request(self, auth: AuthRequest) -> Response:
        ctx = auth.context
        if self.config.pages.verify_request:
            return RedirectResponse(
                ctx.page_url(self.config.pages.verify_request, "verify-request"), status_code=302
            )
        nonce = answers.nonce()
        html = pages.verify_request_page(
            home_url=ctx.base_url() + "/", nonce=nonce, kind=auth.query.get("type")
        )
        return answers.page(html, nonce)
