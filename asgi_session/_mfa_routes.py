"""The second-factor, passkey and account-security routes: HTTP around
:mod:`asgi_session._second_factor` and the ``Passkey`` provider.

- ``/mfa``: the code asked for after a first factor; the right one finishes the sign-in
  through :func:`~asgi_session._signin.finish_sign_in`, the end of every sign-in.
- ``/mfa/totp`` (enrol, ``/disable``), ``/mfa/recovery-codes`` (a new set).
- ``/account/security``: factors and passkeys; ``/account/passkey/rename|delete``.
- ``/reauthenticate``: prove it is you again (step-up) and go back.
- ``/webauthn-options/<provider>``: Auth.js's passkey options (the callback is the
  provider's, ``/callback/<provider>``, like any sign-in).

What changes how someone can sign in (a factor added or removed, new recovery codes)
needs a fresh session (``AuthConfig.fresh_age``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from asgi_session import _accounts as accounts
from asgi_session import _answers as answers
from asgi_session import _mfa_pages as pages
from asgi_session import _ratelimit as ratelimit
from asgi_session import _second_factor as second_factor
from asgi_session import _totp as totp
from asgi_session._answers import NO_STORE
from asgi_session._pages import PasskeyButton
from asgi_session._signin import finish_sign_in
from asgi_session.backends._adapter import AuthenticatorStore
from asgi_session.errors import DuplicateRecordError, SignInError
from asgi_session.providers._passkey import Passkey
from asgi_session.providers._password import Password

if TYPE_CHECKING:
    from asgi_session._routes import AuthRequest, AuthRoutes, Handler
    from asgi_session._session import Session
    from asgi_session.models import User


class MfaRoutes:
    """The handlers of second factors, passkeys, the security page and step-up."""

    def __init__(self, routes: AuthRoutes) -> None:
        self.routes = routes
        self.config = routes.config
        self.passkey = next(
            (p for p in self.config.providers.values() if isinstance(p, Passkey)), None
        )
        self.password = next(
            (p for p in self.config.providers.values() if isinstance(p, Password)), None
        )

    def handlers(self) -> dict[tuple[str, str], Handler]:
        found: dict[tuple[str, str], Handler] = {
            ("GET", "reauthenticate"): self.get_reauthenticate,
            ("POST", "reauthenticate"): self.post_reauthenticate,
            ("GET", "account"): self.get_account,
            ("POST", "account"): self.post_account,
        }
        if self.config.two_factor is not None:
            found[("GET", "mfa")] = self.get_mfa
            found[("POST", "mfa")] = self.post_mfa
        if self.passkey is not None:
            found[("GET", "webauthn-options")] = self.get_webauthn_options
        return found

    # -- shared ----------------------------------------------------------------------

    async def _signed_in(self, auth: AuthRequest) -> tuple[Session, User] | Response:
        """The session and its stored user, or the answer for a signed-out request: to
        the sign-in page and back here (browsers), 401 (others)."""
        ctx = auth.context
        session = await ctx.load_session()
        adapter = self.config.adapter
        user = None
        if session is not None and session.user.id is not None and adapter is not None:
            user = await adapter.get_user(session.user.id)
        if session is None or user is None:
            if auth.method == "GET":
                here = str(auth.request.url)
                url = ctx.page_url(self.config.pages.sign_in, "signin", callbackUrl=here)
                return RedirectResponse(url, status_code=302)
            return JSONResponse({"error": "SessionRequired"}, status_code=401, headers=NO_STORE)
        return session, user

    def _fresh(self, auth: AuthRequest, session: Session) -> bool:
        return session.is_fresh(self.config.fresh_age, auth.context.now)

    def _reauthenticate(self, auth: AuthRequest, back: str) -> Response:
        """Send the browser to prove who it is, then back to ``back``."""
        url = auth.context.auth_url("reauthenticate") + "?" + _query(callbackUrl=back)
        if auth.request.headers.get("x-auth-return-redirect") == "1":
            return JSONResponse(
                {"error": "ReauthenticationRequired", "url": url}, status_code=401, headers=NO_STORE
            )
        return RedirectResponse(url, status_code=303)

    def _security_url(self, auth: AuthRequest, **params: str) -> str:
        url = auth.context.auth_url("account/security")
        return url + "?" + _query(**params) if params else url

    def passkey_button(
        self, auth: AuthRequest, label: str, action: str, callback_url: str
    ) -> PasskeyButton | None:
        passkey = self.passkey
        if passkey is None:
            return None
        ctx = auth.context
        return PasskeyButton(
            label=label,
            action=action,
            options_url=ctx.auth_url(f"webauthn-options/{passkey.id}") + f"?action={action}",
            callback=ctx.auth_url(f"callback/{passkey.id}"),
            csrf_token=ctx.csrf_token(),
            callback_url=callback_url,
        )

    # -- /mfa: the second step of a sign-in ------------------------------------------

    def _challenge(self, auth: AuthRequest) -> second_factor.Challenge | None:
        ctx = auth.context
        return second_factor.open_challenge(ctx, ctx.cookies.get(ctx.names.two_factor.name))

    def _start_over(self, auth: AuthRequest, error: str) -> Response:
        auth.context.clear_cookie(auth.context.names.two_factor)
        return auth.sign_in_error(error)

    async def get_mfa(self, auth: AuthRequest) -> Response:
        if auth.provider_id == "totp":
            return await self._get_enrolment(auth)
        if auth.provider_id:
            return PlainTextResponse("Not Found", status_code=404)
        challenge = self._challenge(auth)
        if challenge is None:
            return self._start_over(auth, "TwoFactorExpired")
        enrolled = await second_factor.enrolled(self.config, challenge.user_id)
        if not enrolled.any and not enrolled.recovery_codes_left:
            # The factors went since the first step (an administrator's reset): signing
            # in again needs none.
            return self._start_over(auth, "TwoFactorExpired")
        ctx = auth.context
        nonce = answers.nonce()
        html = pages.challenge_page(
            action=ctx.auth_url("mfa"),
            csrf_token=ctx.csrf_token(),
            nonce=nonce,
            error=_error(auth),
            totp=enrolled.totp or enrolled.recovery_codes_left > 0,
            passkey=(
                self.passkey_button(auth, "Use a passkey", "authenticate", challenge.target)
                if enrolled.passkeys
                else None
            ),
            links=[("Cancel", ctx.page_url(self.config.pages.sign_in, "signin"))],
        )
        return answers.page(html, nonce)

    async def post_mfa(self, auth: AuthRequest) -> Response:
        step = auth.provider_id or ""
        if step == "":
            return await self._post_challenge(auth)
        if step == "totp":
            return await self._post_enrolment(auth)
        if step == "totp/disable":
            return await self._post_disable(auth)
        if step == "recovery-codes":
            return await self._post_recovery_codes(auth)
        return PlainTextResponse("Not Found", status_code=404)

    def _back_to_challenge(self, auth: AuthRequest, error: str) -> Response:
        return auth.redirect(auth.context.auth_url("mfa") + "?" + _query(error=error))

    async def _post_challenge(self, auth: AuthRequest) -> Response:
        challenge = self._challenge(auth)
        if challenge is None:
            return self._start_over(auth, "TwoFactorExpired")
        if not auth.csrf_verified():
            return self._back_to_challenge(auth, "MissingCSRF")
        outcome = await self.answer_challenge(auth, challenge, auth.field("code") or "")
        if isinstance(outcome, str):
            return auth.redirect(outcome)
        error, retry_after = outcome
        if error in ("TwoFactorFailed", "TwoFactorExpired"):
            return self._start_over(auth, error)
        response = self._back_to_challenge(auth, error)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    async def answer_challenge(
        self, auth: AuthRequest, challenge: second_factor.Challenge, code: str
    ) -> str | tuple[str, int | None]:
        """Check ``code`` against the sign-in ``challenge`` holds: the URL the finished
        sign-in goes to, or ``(error, retry_after)``. Shared by ``/mfa`` and bearer
        clients' ``POST /token``."""
        ctx = auth.context
        config = self.config
        limits = self.routes.limiter
        counted = await limits.second_factor_attempt(auth.request.scope, challenge.user_id, ctx.now)
        if counted.retry_after is not None:
            return "RateLimited", counted.retry_after
        attempt = await second_factor.attempts_left(config, challenge, ctx.now)
        if attempt is None:
            return "TwoFactorFailed", None
        proof = await second_factor.prove(config, challenge.user_id, code[:64], ctx.now)
        if proof is None:
            # The last attempt a challenge allows ends it: the user starts over.
            return ("TwoFactorFailed" if attempt == 0 else "InvalidCode"), None
        await limits.take_back(counted, ctx.now)
        if not await second_factor.claim_finish(config, challenge, ctx.now):
            # This challenge signed in already: its cookie, copied, cannot sign in again.
            return "TwoFactorExpired", None
        assert config.adapter is not None
        user = await config.adapter.get_user(challenge.user_id)
        if user is None:
            return "TwoFactorExpired", None
        return await finish_sign_in(
            ctx,
            user=user.to_dict(),
            account=await second_factor.account_of(config, challenge),
            profile=challenge.profile,
            is_new_user=challenge.is_new_user,
            target=challenge.target,
        )

    # -- /mfa/totp: enrolment -----------------------------------------------------------

    async def _get_enrolment(self, auth: AuthRequest, error: str | None = None) -> Response:
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        session, user = found
        ctx = auth.context
        here = ctx.auth_url("mfa/totp")
        refused = await self._may_enrol(auth, session, user)
        if refused is not None:
            return refused
        if (await second_factor.enrolled(self.config, user.id)).totp:
            return RedirectResponse(self._security_url(auth, error="AlreadyEnrolled"), 303)
        spec = ctx.names.totp_enrolment
        secret = second_factor.open_enrolment(ctx, ctx.cookies.get(spec.name), user.id)
        if secret is None:
            # A new key for a new setup; a reload shows the one already scanned.
            secret = totp.new_secret()
            ctx.set_cookie(
                spec,
                second_factor.seal_enrolment(ctx, user.id, secret),
                max_age=second_factor.ENROLMENT_MAX_AGE,
            )
        account = user.email or user.name or user.id
        uri = totp.otpauth_uri(
            secret,
            account=account,
            issuer=second_factor.issuer_of(self.config, ctx.request_host()),
        )
        nonce = answers.nonce()
        html = pages.totp_enrolment_page(
            action=here,
            csrf_token=ctx.csrf_token(),
            nonce=nonce,
            qr_svg=totp.qr_svg(uri),
            uri=uri,
            secret=secret,
            error=error or _error(auth),
            links=[("Cancel", self._security_url(auth))],
        )
        return answers.page(html, nonce)

    async def _post_enrolment(self, auth: AuthRequest) -> Response:
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        session, user = found
        ctx = auth.context
        here = ctx.auth_url("mfa/totp")
        if not auth.csrf_verified():
            return RedirectResponse(here + "?error=MissingCSRF", status_code=303)
        refused = await self._may_enrol(auth, session, user)
        if refused is not None:
            return refused
        spec = ctx.names.totp_enrolment
        secret = second_factor.open_enrolment(ctx, ctx.cookies.get(spec.name), user.id)
        if secret is None:
            return RedirectResponse(here + "?error=EnrolmentExpired", status_code=303)
        counted = await self.routes.limiter.second_factor_attempt(
            auth.request.scope, user.id, ctx.now
        )
        if counted.retry_after is not None:
            return RedirectResponse(here + "?error=RateLimited", status_code=303)
        try:
            codes = await second_factor.enable_totp(
                self.config, user.id, secret, (auth.field("code") or "")[:64], ctx.now
            )
        except DuplicateRecordError:
            ctx.clear_cookie(spec)
            return RedirectResponse(self._security_url(auth, error="AlreadyEnrolled"), 303)
        if codes is None:
            return RedirectResponse(here + "?error=InvalidCode", status_code=303)
        await self.routes.limiter.take_back(counted, ctx.now)
        ctx.clear_cookie(spec)
        return self._codes_page(auth, codes, "Two-factor sign-in is on")

    async def _may_enrol(self, auth: AuthRequest, session: Session, user: User) -> Response | None:
        """Where an enrolment goes instead, if anywhere: through re-authentication when
        the session is not fresh; back to the security page when nobody has proven the
        account's address (whoever typed it first could otherwise lock its owner out)."""
        if not self._fresh(auth, session):
            return self._reauthenticate(auth, auth.context.auth_url("mfa/totp"))
        if await accounts.holds_unproven(auth.context, user):
            return RedirectResponse(self._security_url(auth, error="AccountNotConfirmed"), 303)
        return None

    def _codes_page(self, auth: AuthRequest, codes: list[str], title: str) -> Response:
        nonce = answers.nonce()
        html = pages.recovery_codes_page(
            codes, continue_url=self._security_url(auth), nonce=nonce, title=title
        )
        return answers.page(html, nonce)

    async def _post_disable(self, auth: AuthRequest) -> Response:
        found = await self._changing_factors(auth)
        if isinstance(found, Response):
            return found
        _, user = found
        await second_factor.disable_totp(self.config, user.id)
        return RedirectResponse(self._security_url(auth, message="totp-off"), status_code=303)

    async def _post_recovery_codes(self, auth: AuthRequest) -> Response:
        found = await self._changing_factors(auth)
        if isinstance(found, Response):
            return found
        _, user = found
        if not (await second_factor.enrolled(self.config, user.id)).any:
            return RedirectResponse(self._security_url(auth), status_code=303)
        codes = await second_factor.regenerate_recovery_codes(
            self.config, user.id, auth.context.now
        )
        return self._codes_page(auth, codes, "Your new recovery codes")

    async def _changing_factors(self, auth: AuthRequest) -> tuple[Session, User] | Response:
        """A signed-in, fresh session posting with its CSRF token: what every change of
        how the account signs in needs."""
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        if not auth.csrf_verified():
            return RedirectResponse(self._security_url(auth, error="MissingCSRF"), 303)
        if not self._fresh(auth, found[0]):
            return self._reauthenticate(auth, self._security_url(auth))
        return found

    # -- /account/security ------------------------------------------------------------

    async def get_account(self, auth: AuthRequest) -> Response:
        if auth.provider_id != "security":
            return PlainTextResponse("Not Found", status_code=404)
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        _, user = found
        ctx = auth.context
        two_factor = self.config.two_factor is not None
        enrolled = (
            await second_factor.enrolled(self.config, user.id)
            if two_factor
            else second_factor.Enrolled(False, 0, tuple(await self._passkeys(user.id)))
        )
        message = {
            "totp-off": "The authenticator app is turned off.",
            "renamed": "The passkey is renamed.",
            "deleted": "The passkey is removed.",
        }.get(auth.query.get("message", ""))
        page = pages.SecurityPage(
            csrf_token=ctx.csrf_token(),
            totp=enrolled.totp,
            recovery_codes_left=enrolled.recovery_codes_left,
            totp_url=ctx.auth_url("mfa/totp") if two_factor else None,
            disable_totp_url=ctx.auth_url("mfa/totp/disable"),
            recovery_codes_url=ctx.auth_url("mfa/recovery-codes"),
            passkeys=enrolled.passkeys,
            rename_url=ctx.auth_url("account/passkey/rename"),
            delete_url=ctx.auth_url("account/passkey/delete"),
            add_passkey=self.passkey_button(
                auth, "Add a passkey", "register", self._security_url(auth)
            ),
            message=message,
            error=_error(auth),
        )
        nonce = answers.nonce()
        html = pages.security_page(
            page, nonce=nonce, links=[("Back to the site", ctx.base_url() + "/")]
        )
        return answers.page(html, nonce)

    async def _passkeys(self, user_id: str) -> list[Any]:
        return await second_factor.passkeys_of(self.config, user_id)

    async def post_account(self, auth: AuthRequest) -> Response:
        step = auth.provider_id
        if step not in ("passkey/rename", "passkey/delete") or self.passkey is None:
            return PlainTextResponse("Not Found", status_code=404)
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        session, user = found
        if not auth.csrf_verified():
            return RedirectResponse(self._security_url(auth, error="MissingCSRF"), 303)
        adapter = self.config.adapter
        assert isinstance(adapter, AuthenticatorStore)
        credential_id = auth.field("credentialId") or ""
        passkey = await adapter.get_authenticator(credential_id) if credential_id else None
        if passkey is None or passkey.user_id != user.id:
            return RedirectResponse(self._security_url(auth, error="PasskeyNotFound"), 303)
        if not self._fresh(auth, session):
            # Even a name: "old phone, remove me" on the owner's own passkey misleads them.
            return self._reauthenticate(auth, self._security_url(auth))
        if step == "passkey/rename":
            name = " ".join((auth.field("name") or "").split())[:64]
            await adapter.update_authenticator(credential_id, {"name": name or None})
            return RedirectResponse(self._security_url(auth, message="renamed"), 303)
        await second_factor.remove_passkey(self.config, passkey)
        return RedirectResponse(self._security_url(auth, message="deleted"), 303)

    # -- /reauthenticate ------------------------------------------------------------------

    async def get_reauthenticate(self, auth: AuthRequest, error: str | None = None) -> Response:
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        _, user = found
        ctx = auth.context
        params = auth.query if auth.method == "GET" else auth.form
        requested = params.get("callbackUrl")
        callback_url = await auth.callback_url(requested if isinstance(requested, str) else None)
        password = None
        if (
            self.password is not None
            and user.email
            and await self.password.has_password(self.config, user)
        ):
            password = (ctx.auth_url(f"callback/{self.password.id}"), user.email, "password")
        enrolled = (
            await second_factor.enrolled(self.config, user.id)
            if self.config.two_factor is not None
            else second_factor.Enrolled(False, 0, tuple(await self._passkeys(user.id)))
        )
        nonce = answers.nonce()
        html = pages.reauthenticate_page(
            nonce=nonce,
            csrf_token=ctx.csrf_token(),
            callback_url=callback_url,
            password=password,
            totp_action=(
                ctx.auth_url("reauthenticate")
                if enrolled.totp or enrolled.recovery_codes_left
                else None
            ),
            passkey=(
                self.passkey_button(auth, "Confirm with a passkey", "authenticate", callback_url)
                if enrolled.passkeys
                else None
            ),
            error=error or _error(auth),
            # Any sign-in is a fresh one: an OAuth or magic-link account proves it so.
            sign_in_url=ctx.page_url(self.config.pages.sign_in, "signin", callbackUrl=callback_url),
        )
        return answers.page(html, nonce)

    async def post_reauthenticate(self, auth: AuthRequest) -> Response:
        """A TOTP or recovery code proving it is still the signed-in user: a new
        session (a new token, a new ``auth_time``), then back."""
        found = await self._signed_in(auth)
        if isinstance(found, Response):
            return found
        session, user = found
        if not auth.csrf_verified():
            return await self.get_reauthenticate(auth, "MissingCSRF")
        if self.config.two_factor is None:
            return PlainTextResponse("Not Found", status_code=404)
        ctx = auth.context
        attempt = await second_factor.reauthentication_attempt(
            self.config, _session_key(session), ctx.now
        )
        if attempt.retry_after is not None:
            # Too many wrong codes from this session: whoever holds it signs in again,
            # from the first factor. (A JWT cannot be ended alone: for one, the browser's
            # cookie goes and the count holds the token to a few guesses per period.)
            await self.config.strategy.destroy(ctx, session)
            ctx.set_session(None)
            return auth.sign_in_error("TwoFactorFailed")
        counted = await self.routes.limiter.second_factor_attempt(
            auth.request.scope, user.id, ctx.now
        )
        if counted.retry_after is not None:
            return await self.get_reauthenticate(auth, "RateLimited")
        proof = await second_factor.prove(
            self.config, user.id, (auth.field("code") or "")[:64], ctx.now
        )
        if proof is None:
            return await self.get_reauthenticate(auth, "InvalidCode")
        await self.routes.limiter.take_back(counted, ctx.now)
        await ratelimit.release(self.config.rate_limit_store, attempt, ctx.now)
        target = await auth.callback_url(auth.field("callbackUrl"))
        ctx.clear_callback_url()
        url = await finish_sign_in(
            ctx,
            user=user.to_dict(),
            account={"provider": proof, "type": proof, "providerAccountId": user.id},
            profile=None,
            is_new_user=False,
            target=target,
        )
        return auth.redirect(url)

    # -- /webauthn-options/<provider> -------------------------------------------------------

    async def get_webauthn_options(self, auth: AuthRequest) -> Response:
        passkey = self.passkey
        assert passkey is not None
        if auth.provider_id != passkey.id:
            return JSONResponse({"error": "Invalid provider"}, status_code=404, headers=NO_STORE)
        ctx = auth.context
        session = await ctx.load_session()
        adapter = self.config.adapter
        user = None
        if session is not None and session.user.id is not None and adapter is not None:
            user = await adapter.get_user(session.user.id)
        challenge = self._challenge(auth)
        if user is not None and await accounts.holds_unproven(ctx, user):
            # Linking would be refused after the ceremony, leaving a passkey on the
            # device that can never sign in: refused before it starts.
            body = {"error": "AccountNotConfirmed", "message": "confirm your email address first"}
            return JSONResponse(body, status_code=403, headers=NO_STORE)
        try:
            body = await passkey.options(
                auth,
                action=auth.query.get("action"),
                user=user,
                fresh=session is not None and self._fresh(auth, session),
                pending_user_id=None if challenge is None else challenge.user_id,
            )
        except SignInError as exc:
            status = 401 if exc.error == "ReauthenticationRequired" else 400
            body = {"error": exc.error, "message": str(exc)}
            return JSONResponse(body, status_code=status, headers=NO_STORE)
        return JSONResponse(body, headers=NO_STORE)


def _session_key(session: Session) -> str:
    """Whom the re-authentication count counts: a stored session by its id, a JWT by its
    own id (its ``jti``), so one stolen token's guesses cost its owner's none."""
    record = session.record
    if record is not None and record.id:
        return f"session:{record.id}"
    jti = (session.claims or {}).get("jti")
    return f"token:{jti}" if isinstance(jti, str) and jti else ratelimit.session_subject(session)


def _error(auth: AuthRequest) -> str | None:
    error = auth.query.get("error")
    return error[:64] if error else None


def _query(**params: str) -> str:
    return urlencode(params)
