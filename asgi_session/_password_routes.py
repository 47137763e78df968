"""The password routes: HTTP around the :class:`~asgi_session.providers.Password` steps.

``/signup``, ``/password/forgot``, ``/password/reset``, ``/password/change`` and
``/verify-email``. Each handler checks what every form route checks (the CSRF token, a
rate limit), calls one step of the provider, and answers: a page, a redirect, or JSON
for clients that send ``X-Auth-Return-Redirect: 1``. A step that vouches for someone
(sign-up, a verification link, a reset) ends in :func:`~asgi_session._signin.complete_sign_in`,
like every sign-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from asgi_session import _answers as answers
from asgi_session import _pages as pages
from asgi_session._answers import NO_STORE
from asgi_session._signin import complete_sign_in
from asgi_session.errors import CredentialsSignin, PasswordRefused, SignInError
from asgi_session.providers._base import Identity

if TYPE_CHECKING:
    from asgi_session._routes import AuthRequest, AuthRoutes, Handler
    from asgi_session.providers._password import Password

Form = Literal["signup", "password/forgot", "password/reset", "password/change"]

_TITLES: dict[Form, tuple[str, str]] = {
    "signup": ("Create an account", "Create account"),
    "password/forgot": ("Forgot your password?", "Send me a reset link"),
    "password/reset": ("Choose a new password", "Set password"),
    "password/change": ("Change your password", "Change password"),
}
_INPUTS: dict[Form, list[pages.FormInput]] = {
    "signup": [
        ("name", "Name (optional)", "text", "name"),
        ("email", "Email", "email", "email"),
        ("password", "Password", "password", "new-password"),
    ],
    "password/forgot": [("email", "Email", "email", "email")],
    "password/reset": [("password", "New password", "password", "new-password")],
    "password/change": [
        ("currentPassword", "Current password", "password", "current-password"),
        ("newPassword", "New password", "password", "new-password"),
    ],
}
_MESSAGES = {
    "MissingCSRF": "The form expired. Please try again.",
    "WrongPassword": "That is not your current password.",
    "RateLimited": "Too many attempts. Wait a few minutes, then try again.",
}


class PasswordRoutes:
    """The handlers of one app's :class:`~asgi_session.providers.Password` provider."""

    def __init__(self, routes: AuthRoutes, provider: Password) -> None:
        self.routes = routes
        self.config = routes.config
        self.provider = provider

    def handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "signup"): self.get_sign_up,
            ("POST", "signup"): self.post_sign_up,
            ("GET", "password"): self.get_password,
            ("POST", "password"): self.post_password,
            ("GET", "verify-email"): self.get_verify_email,
            ("POST", "verify-email"): self.post_verify_email,
        }

    # -- answers ------------------------------------------------------------------

    def _form(
        self,
        auth: AuthRequest,
        form: Form,
        *,
        error: tuple[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        """The built-in page of ``form``, or the app's own (``Pages``) with ``?error=``."""
        ctx = auth.context
        own = {
            "signup": self.config.pages.sign_up,
            "password/forgot": self.config.pages.forgot_password,
            "password/reset": self.config.pages.reset_password,
            "password/change": None,
        }[form]
        query = auth.query if auth.method == "GET" else auth.form
        link = {key: query.get(key) for key in ("token", "email") if form == "password/reset"}
        callback_url = query.get("callbackUrl")
        if own:
            url = ctx.page_url(
                own,
                form,
                error=None if error is None else error[0],
                callbackUrl=callback_url if isinstance(callback_url, str) else None,
                **{key: value if isinstance(value, str) else None for key, value in link.items()},
            )
            return RedirectResponse(url, status_code=302)
        hidden = {"csrfToken": ctx.csrf_token()}
        if isinstance(callback_url, str):
            hidden["callbackUrl"] = callback_url
        hidden.update({key: value for key, value in link.items() if isinstance(value, str)})
        values = {
            key: value for key in ("name", "email") if isinstance(value := auth.field(key), str)
        }
        sign_in = ctx.page_url(self.config.pages.sign_in, "signin")
        links = [("Back to sign in", sign_in)]
        if form == "signup":
            links = [("Already have an account? Sign in", sign_in)]
        title, submit = _TITLES[form]
        nonce = answers.nonce()
        html = pages.password_form_page(
            title,
            action=ctx.auth_url(form),
            inputs=_INPUTS[form],
            hidden=hidden,
            submit=submit,
            nonce=nonce,
            error=error,
            values=values if auth.method == "POST" else None,
            links=links,
        )
        response = answers.page(html, nonce, status)
        if form == "password/reset":
            response.headers["referrer-policy"] = "no-referrer"  # the link's token is in the URL
        return response

    def _refused(self, auth: AuthRequest, form: Form, code: str, message: str) -> Response:
        """A form that was refused: shown again with why (JSON clients get the why)."""
        if _wants_json(auth):
            return JSONResponse(
                {"error": code, "message": message}, status_code=400, headers=NO_STORE
            )
        return self._form(auth, form, error=(code, message), status=400)

    def _refused_by(self, auth: AuthRequest, form: Form, exc: SignInError) -> Response:
        if isinstance(exc, PasswordRefused):
            return self._refused(auth, form, exc.error, exc.message)
        if exc.page == "error":
            return auth.refused(exc)
        message = pages.SIGN_IN_ERRORS.get(exc.error) or _MESSAGES.get(exc.error)
        return self._refused(auth, form, exc.error, message or "That did not work. Try again.")

    async def _limited(
        self,
        auth: AuthRequest,
        form: Form,
        action: Literal["sign_up", "reset_link", "reset", "change"],
        subject: str | None = None,
    ) -> Response | None:
        counted = await self.routes.limiter.account_action(
            action, auth.request.scope, subject, auth.context.now
        )
        if counted.retry_after is None:
            return None
        if _wants_json(auth):
            return answers.too_many(counted.retry_after)
        response = self._refused(auth, form, "RateLimited", _MESSAGES["RateLimited"])
        response.status_code = 429
        response.headers["Retry-After"] = str(counted.retry_after)
        return response

    async def _sign_in(self, auth: AuthRequest, identity: Identity) -> Response:
        return auth.redirect(await complete_sign_in(auth.context, identity))

    # -- /signup ---------------------------------------------------------------------

    async def get_sign_up(self, auth: AuthRequest) -> Response:
        return self._form(auth, "signup")

    async def post_sign_up(self, auth: AuthRequest) -> Response:
        if not auth.csrf_verified():
            return self._refused(auth, "signup", "MissingCSRF", _MESSAGES["MissingCSRF"])
        subject = self.provider.rate_limit_identifier(auth)
        limited = await self._limited(auth, "signup", "sign_up", subject)
        if limited is not None:
            return limited
        try:
            outcome = await self.provider.sign_up(auth)
            if isinstance(outcome, Identity):
                return await self._sign_in(auth, outcome)
        except SignInError as exc:
            return self._refused_by(auth, "signup", exc)
        return auth.redirect(outcome)

    # -- /password/<step> ---------------------------------------------------------------

    async def get_password(self, auth: AuthRequest) -> Response:
        step = auth.provider_id
        if step == "forgot":
            return self._form(auth, "password/forgot")
        if step == "reset":
            return self._form(auth, "password/reset")
        if step == "change":
            session = await auth.context.load_session()
            if session is None:
                ctx = auth.context
                here = ctx.auth_url("password/change")
                return RedirectResponse(
                    ctx.page_url(self.config.pages.sign_in, "signin", callbackUrl=here),
                    status_code=302,
                )
            if not session.is_fresh(self.config.fresh_age, auth.context.now):
                return self._reauthenticate(auth)
            return self._form(auth, "password/change")
        return PlainTextResponse("Not Found", status_code=404)

    async def post_password(self, auth: AuthRequest) -> Response:
        step = auth.provider_id
        if step not in ("forgot", "reset", "change"):
            return PlainTextResponse("Not Found", status_code=404)
        form: Form = "password/forgot" if step == "forgot" else "password/reset"
        if step == "change":
            form = "password/change"
        if not auth.csrf_verified():
            return self._refused(auth, form, "MissingCSRF", _MESSAGES["MissingCSRF"])
        if step == "forgot":
            return await self._forgot(auth)
        if step == "reset":
            return await self._reset(auth)
        return await self._change(auth)

    async def _forgot(self, auth: AuthRequest) -> Response:
        subject = self.provider.rate_limit_identifier(auth)
        limited = await self._limited(auth, "password/forgot", "reset_link", subject)
        if limited is not None:
            return limited
        try:
            url = await self.provider.request_reset(auth)
        except SignInError as exc:
            return self._refused_by(auth, "password/forgot", exc)
        return auth.redirect(url)

    async def _reset(self, auth: AuthRequest) -> Response:
        limited = await self._limited(auth, "password/reset", "reset")
        if limited is not None:
            return limited
        try:
            identity = await self.provider.reset_password(auth)
            # Whoever knew the old password is signed out everywhere, then this
            # browser, which proved the inbox, is signed in.
            await self.config.strategy.end_user_sessions(identity.account_id, now=auth.context.now)
            response = await self._sign_in(auth, identity)
        except SignInError as exc:
            if exc.error == "InvalidResetLink":
                # Nothing to retry on this page: a new link is asked for on the other.
                return self._refused(
                    auth, "password/forgot", exc.error, pages.SIGN_IN_ERRORS[exc.error]
                )
            return self._refused_by(auth, "password/reset", exc)
        response.headers["referrer-policy"] = "no-referrer"
        return response

    async def _change(self, auth: AuthRequest) -> Response:
        ctx = auth.context
        session = await ctx.load_session()
        if session is None or session.user.id is None:
            if not _wants_json(auth):
                # The session ended while the form was open: sign in, then back to it.
                here = ctx.auth_url("password/change")
                url = ctx.page_url(self.config.pages.sign_in, "signin", callbackUrl=here)
                return RedirectResponse(url, status_code=302)
            return JSONResponse({"error": "SessionRequired"}, status_code=401, headers=NO_STORE)
        if not session.is_fresh(self.config.fresh_age, ctx.now):
            # Whoever holds a stolen cookie must not be able to lock the owner out.
            return self._reauthenticate(auth)
        limited = await self._limited(auth, "password/change", "change", f"user:{session.user.id}")
        if limited is not None:
            return limited
        try:
            await self.provider.change_password(auth, session.user.id)
        except CredentialsSignin:
            return self._refused(
                auth, "password/change", "WrongPassword", _MESSAGES["WrongPassword"]
            )
        except SignInError as exc:
            return self._refused_by(auth, "password/change", exc)
        # Whoever else knew the old password is signed out; this session stays.
        await ctx.end_other_sessions(session)
        if _wants_json(auth):
            # A bearer JWT stays by being re-issued past the cut-off that ended the other
            # sessions: the new one is in X-Auth-Token.
            return JSONResponse({"ok": True}, headers=NO_STORE)
        callback_url = auth.field("callbackUrl")
        if callback_url:
            return auth.redirect(await auth.callback_url(callback_url))
        nonce = answers.nonce()
        html = pages.message_page(
            "Password changed",
            "Your password has been changed, and your other sessions have been signed out.",
            home_url=ctx.base_url() + "/",
            nonce=nonce,
        )
        return answers.page(html, nonce)

    # -- /verify-email -------------------------------------------------------------------

    def _reauthenticate(self, auth: AuthRequest) -> Response:
        """Prove it is you again (a recent sign-in), then back to the change form."""
        ctx = auth.context
        query = urlencode({"callbackUrl": ctx.auth_url("password/change")})
        url = f"{ctx.auth_url('reauthenticate')}?{query}"
        if _wants_json(auth):
            body = {"error": "ReauthenticationRequired", "url": url}
            return JSONResponse(body, status_code=401, headers=NO_STORE)
        return RedirectResponse(url, status_code=303)

    async def get_verify_email(self, auth: AuthRequest) -> Response:
        """The link's page: a button that confirms. Opening the link uses nothing up,
        so a mail scanner following links cannot confirm an account for whoever made
        it (nor sign them in)."""
        return self._verify_page(auth, auth.query)

    def _verify_page(
        self, auth: AuthRequest, fields: Mapping[str, Any], error: tuple[str, str] | None = None
    ) -> Response:
        ctx = auth.context
        hidden = {"csrfToken": ctx.csrf_token()}
        for key in ("token", "email"):
            value = fields.get(key)
            if isinstance(value, str) and value:
                hidden[key] = value
        nonce = answers.nonce()
        html = pages.password_form_page(
            "Confirm your email address",
            action=ctx.auth_url("verify-email"),
            inputs=[],
            hidden=hidden,
            submit="Confirm my address",
            nonce=nonce,
            error=error,
        )
        response = answers.page(html, nonce, 200 if error is None else 400)
        response.headers["referrer-policy"] = "no-referrer"  # the link's token is in the URL
        return response

    async def post_verify_email(self, auth: AuthRequest) -> Response:
        if not auth.csrf_verified():
            # The link is unused: the page again, with a token that works.
            return self._verify_page(auth, auth.form, ("MissingCSRF", _MESSAGES["MissingCSRF"]))
        try:
            return await self._sign_in(auth, await self.provider.verify_email(auth))
        except SignInError as exc:
            return auth.refused(exc)


def _wants_json(auth: AuthRequest) -> bool:
    # A bearer request comes from a client that is not a browser: no page is read there.
    return auth.context.bearer or auth.request.headers.get("x-auth-return-redirect") == "1"
