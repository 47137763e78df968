"""The built-in HTML pages: sign in, sign out, errors, "check your email", and the
password pages (sign up, forgot, reset, change).

Apps that want their own pages set :class:`asgi_session.Pages`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from importlib import resources

from asgi_session.providers._base import Provider

#: Messages shown on the sign-in page for ``?error=...``.
SIGN_IN_ERRORS = {
    "CredentialsSignin": "Those details did not match an account. Check them and try again.",
    "OAuthAccountNotLinked": (
        "That email address already belongs to an account. Sign in the way you did "
        "before, then link this provider."
    ),
    "OAuthCallbackError": "The sign-in provider did not complete the sign-in. Try again.",
    "OAuthSignin": "The sign-in provider could not be reached. Try again.",
    "AccessDenied": "You do not have permission to sign in.",
    "Verification": "That sign-in link is no longer valid. It may have been used or expired.",
    "EmailSignin": "The sign-in email could not be sent.",
    "MissingCSRF": "The form expired. Please try again.",
    "SessionRequired": "Please sign in to see that page.",
    "RateLimited": "Too many attempts. Wait a few minutes, then try again.",
    "InvalidEmail": "That is not an email address we can send to.",
    "InvalidResetLink": (
        "That reset link is no longer valid: it may have been used, replaced by a newer "
        "one, or expired. Ask for a new one."
    ),
    "NoPassword": "This account has no password yet: ask for a reset link to set one.",
    "ReauthenticationRequired": (
        "Sign in again the way you usually do, then link this account: adding a way to "
        "sign in needs a recent sign-in."
    ),
    "TwoFactorExpired": "The sign-in took too long to finish. Please sign in again.",
    "TwoFactorFailed": "Too many wrong codes. Please sign in again.",
    "WebAuthnVerificationError": "The passkey could not be verified. Try again.",
    "AccountNotConfirmed": (
        "Confirm your email address (open the link we sent) before linking another way to "
        "sign in to this account."
    ),
}
#: What the "check your email" page says, by ``?type=...``.
CHECK_EMAIL = {
    "email": "A sign-in link has been sent to your email address.",
    "signup": (
        "We have sent a link to your email address. Open it to confirm the address and "
        "finish creating your account."
    ),
    "reset": (
        "If an account uses that address, a link to choose a new password is on its way. "
        "It works once, for a limited time."
    ),
}
_DEFAULT_SIGN_IN_ERROR = "Sign-in did not work. Please try again."

#: Title, message and HTTP status of the error page for ``?error=...``.
ERROR_PAGES = {
    "Configuration": (
        "Server error",
        "The server is not set up correctly. The app's logs say more.",
        500,
    ),
    "AccessDenied": ("Access denied", "You do not have permission to sign in.", 403),
    "Verification": (
        "Unable to sign in",
        "The sign-in link is no longer valid. It may have been used already or expired.",
        403,
    ),
}
_DEFAULT_ERROR = ("Error", "Something went wrong while signing in.", 200)

_STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;background:#f4f5f7;color:#1f2328;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:10px;box-shadow:0 2px 10px rgba(0,0,0,.08);
padding:2rem 2.5rem;width:100%;max-width:22rem}
h1{font-size:1.3rem;margin:0 0 1.2rem}
form{margin:0 0 1.2rem}label{display:block;font-size:.9rem;margin:.6rem 0 .2rem}
input[type=text],input[type=email],input[type=password],input:not([type]){
width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #c9ced6;border-radius:6px}
button{width:100%;margin-top:.9rem;padding:.6rem;border:0;border-radius:6px;
background:#24292f;color:#fff;font-size:1rem;cursor:pointer}
.error{background:#fdecea;color:#8a1c12;border-radius:6px;padding:.6rem .8rem;margin-bottom:1rem}
hr{border:0;border-top:1px solid #e3e6ea;margin:1.2rem 0}p{line-height:1.45}
.links{font-size:.9rem;text-align:center;margin:.8rem 0 0}
h2{font-size:1.05rem;margin:1.4rem 0 .4rem}code{font-size:.95rem}
.qr svg{display:block;margin:0 auto;max-width:12rem;height:auto}
form.inline{display:inline-block;margin:.3rem .4rem .3rem 0}
form.inline button{width:auto;padding:.35rem .8rem}
"""


def content_security_policy(nonce: str) -> str:
    """The page's policy: nothing loads but its own nonce'd style, and no site may frame
    it (a framed sign-in form is a clickjacking target). ``form-action`` is left out on
    purpose: browsers apply it to the redirect a form's answer makes, which for OAuth
    sign-in goes to the provider's site."""
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def document(title: str, body: str, nonce: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<title>{escape(title)}</title><style nonce="{nonce}">{_STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>"
    )


def hidden_input(name: str, value: str) -> str:
    return f'<input type=hidden name="{escape(name)}" value="{escape(value)}">'


def links_paragraph(links: Iterable[tuple[str, str]]) -> str:
    items = [f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in links]
    return f"<p class=links>{' · '.join(items)}</p>" if items else ""


@functools.cache
def _script() -> str:
    return resources.files("asgi_session").joinpath("passkey.js").read_text("utf-8")


def script(nonce: str) -> str:
    """The passkey script, for a page with passkey buttons or autofill."""
    return f'<script nonce="{escape(nonce)}">{_script()}</script>'


@dataclass(frozen=True, slots=True)
class PasskeyButton:
    """What a passkey button needs: where options come from and the callback goes."""

    label: str
    #: ``"authenticate"`` or ``"register"``.
    action: str
    options_url: str
    callback: str
    csrf_token: str
    callback_url: str


def passkey_button(button: PasskeyButton) -> str:
    return (
        f'<button type=button data-passkey="{escape(button.action)}" '
        f'data-options="{escape(button.options_url)}" data-callback="{escape(button.callback)}" '
        f'data-csrf="{escape(button.csrf_token)}" data-callback-url="{escape(button.callback_url)}"'
        f">{escape(button.label)}</button>"
        "<p class=error data-passkey-error hidden></p>"
    )


def _provider_form(
    provider: Provider,
    *,
    action: str,
    csrf_token: str,
    callback_url: str,
    links: Iterable[tuple[str, str]] = (),
    passkey: PasskeyButton | None = None,
) -> str:
    hidden = hidden_input("csrfToken", csrf_token) + hidden_input("callbackUrl", callback_url)
    name = escape(provider.name)
    if passkey is not None and provider.type == "webauthn":
        return passkey_button(passkey) + links_paragraph(links)
    inputs = []
    for field, options in provider.form_fields.items():
        input_id = escape(f"input-{field}-for-{provider.id}-provider")
        placeholder = options.get("placeholder")
        extra = f' placeholder="{escape(placeholder)}"' if placeholder else ""
        if options.get("required"):
            extra += " required"
        if passkey is not None and field in ("email", "username"):
            # Conditional UI: the browser offers this site's passkeys in the field's
            # autofill, and picking one signs in with it.
            extra += (
                ' autocomplete="username webauthn"'
                f' data-passkey-autofill="{escape(passkey.options_url)}"'
                f' data-callback="{escape(passkey.callback)}"'
                f' data-csrf="{escape(passkey.csrf_token)}"'
                f' data-callback-url="{escape(passkey.callback_url)}"'
            )
        inputs.append(
            f'<label for="{input_id}">{escape(options.get("label", field))}</label>'
            f'<input id="{input_id}" name="{escape(field)}" '
            f'type="{escape(options.get("type", "text"))}"{extra}>'
        )
    return (
        f'<form method=post action="{escape(action)}" data-provider="{escape(provider.id)}">'
        f"{hidden}{''.join(inputs)}<button type=submit>Sign in with {name}</button></form>"
        f"{links_paragraph(links)}"
    )


def alert(error: str, message: str) -> str:
    return f'<div class=error role=alert data-error="{escape(error)}">{escape(message)}</div>'


def sign_in_page(
    providers: Iterable[tuple[Provider, str, list[tuple[str, str]]]],
    *,
    csrf_token: str,
    callback_url: str,
    error: str | None,
    nonce: str,
    passkey: PasskeyButton | None = None,
) -> str:
    """The sign-in page: one form per ``(provider, form action URL, links)``;
    ``passkey`` drives a passkey provider's button and the other forms' autofill."""
    parts = ["<h1>Sign in</h1>"]
    if error:
        parts.append(alert(error, SIGN_IN_ERRORS.get(error, _DEFAULT_SIGN_IN_ERROR)))
    forms = [
        _provider_form(
            provider,
            action=action,
            csrf_token=csrf_token,
            callback_url=callback_url,
            links=links,
            passkey=passkey,
        )
        for provider, action, links in providers
    ]
    parts.append("<hr>".join(forms) or "<p>No sign-in providers are configured.</p>")
    if passkey is not None:
        parts.append(script(nonce))
    return document("Sign in", "".join(parts), nonce)


def sign_out_page(*, action: str, csrf_token: str, callback_url: str, nonce: str) -> str:
    """The page confirming a sign-out (a POST, so a link cannot sign anyone out)."""
    return document(
        "Sign out",
        "<h1>Sign out</h1><p>Are you sure you want to sign out?</p>"
        f'<form method=post action="{escape(action)}">'
        f"{hidden_input('csrfToken', csrf_token)}{hidden_input('callbackUrl', callback_url)}"
        "<button type=submit>Sign out</button></form>",
        nonce,
    )


def error_page(error: str | None, *, home_url: str, nonce: str) -> tuple[str, int]:
    """The error page's HTML and HTTP status for an error code."""
    title, message, status = ERROR_PAGES.get(error or "", _DEFAULT_ERROR)
    body = (
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
        f'<p><a href="{escape(home_url)}">Back to the site</a></p>'
    )
    return document(title, body, nonce), status


def verify_request_page(*, home_url: str, nonce: str, kind: str | None = None) -> str:
    """The "check your email" page shown after a link was mailed (``kind``: ``email``,
    a magic link; ``signup``, a verification link; ``reset``, a reset link)."""
    message = CHECK_EMAIL.get(kind or "email", CHECK_EMAIL["email"])
    return document(
        "Check your email",
        f"<h1>Check your email</h1><p>{escape(message)}</p>"
        f'<p><a href="{escape(home_url)}">Back to the site</a></p>',
        nonce,
    )


def message_page(title: str, message: str, *, home_url: str, nonce: str) -> str:
    """A page that says one thing ("Your password has been changed")."""
    return document(
        title,
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
        f'<p><a href="{escape(home_url)}">Back to the site</a></p>',
        nonce,
    )


#: ``(name, label, input type, autocomplete)`` of each password form's inputs.
FormInput = tuple[str, str, str, str]


def password_form_page(
    title: str,
    *,
    action: str,
    inputs: Iterable[FormInput],
    hidden: dict[str, str],
    submit: str,
    nonce: str,
    error: tuple[str, str] | None = None,
    values: dict[str, str] | None = None,
    links: Iterable[tuple[str, str]] = (),
) -> str:
    """One of the password pages: a form posting ``inputs`` and ``hidden`` to ``action``.

    ``error`` is ``(code, message)`` of a refused attempt; ``values`` refills fields that
    are not passwords, so a refused sign-up keeps the address typed.
    """
    parts = [f"<h1>{escape(title)}</h1>"]
    if error is not None:
        parts.append(alert(*error))
    fields = [hidden_input(name, value) for name, value in hidden.items()]
    for name, label, kind, autocomplete in inputs:
        input_id = escape(f"input-{name}")
        value = (values or {}).get(name) if kind != "password" else None
        shown = f' value="{escape(value)}"' if value else ""
        required = "" if name == "name" else " required"
        fields.append(
            f'<label for="{input_id}">{escape(label)}</label>'
            f'<input id="{input_id}" name="{escape(name)}" type="{escape(kind)}" '
            f'autocomplete="{escape(autocomplete)}"{shown}{required}>'
        )
    parts.append(
        f'<form method=post action="{escape(action)}">{"".join(fields)}'
        f"<button type=submit>{escape(submit)}</button></form>{links_paragraph(links)}"
    )
    return document(title, "".join(parts), nonce)
