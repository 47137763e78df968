"""The built-in pages of second factors and passkeys: the code asked for after a first
factor, TOTP enrolment, recovery codes, the account's security page, re-authentication.

Passkey buttons are driven by ``passkey.js`` (shipped with the package), inlined under
the page's CSP nonce: the page loads nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from asgi_session._pages import (
    PasskeyButton,
    alert,
    document,
    hidden_input,
    links_paragraph,
    passkey_button,
    script,
)
from asgi_session.models import Authenticator

#: Messages for ``?error=...`` on these pages.
MESSAGES = {
    "InvalidCode": "That code did not work. Check your authenticator app and try again.",
    "MissingCSRF": "The form expired. Please try again.",
    "RateLimited": "Too many attempts. Wait a few minutes, then try again.",
    "AlreadyEnrolled": "An authenticator app is set up already.",
    "EnrolmentExpired": "The setup took too long. Scan the new code and try again.",
    "WebAuthnVerificationError": "The passkey could not be verified. Try again.",
    "PasskeyNotFound": "That passkey is not one of this account's.",
    "AccountNotConfirmed": (
        "Confirm your email address (open the link we sent) before adding a way to sign in."
    ),
}


def _code_form(action: str, csrf_token: str, extra: dict[str, str], submit: str) -> str:
    fields = hidden_input("csrfToken", csrf_token) + "".join(
        hidden_input(name, value) for name, value in extra.items()
    )
    return (
        f'<form method=post action="{escape(action)}">{fields}'
        "<label for=input-code>Code</label>"
        "<input id=input-code name=code type=text inputmode=numeric "
        "autocomplete=one-time-code autofocus required maxlength=32>"
        f"<button type=submit>{escape(submit)}</button></form>"
    )


def challenge_page(
    *,
    action: str,
    csrf_token: str,
    nonce: str,
    error: str | None,
    totp: bool,
    passkey: PasskeyButton | None,
    links: Iterable[tuple[str, str]] = (),
) -> str:
    """After a first factor: the code (TOTP or a recovery code), or a passkey."""
    parts = ["<h1>Two-factor sign-in</h1>"]
    if error:
        parts.append(alert(error, MESSAGES.get(error, MESSAGES["InvalidCode"])))
    if totp:
        parts.append(
            "<p>Enter the 6-digit code from your authenticator app, or one of your "
            "recovery codes.</p>"
        )
        parts.append(_code_form(action, csrf_token, {}, "Verify"))
    if passkey is not None:
        if totp:
            parts.append("<hr>")
        parts.append(passkey_button(passkey))
    body = "".join(parts) + links_paragraph(links)
    return document("Two-factor sign-in", body + (script(nonce) if passkey else ""), nonce)


def totp_enrolment_page(
    *,
    action: str,
    csrf_token: str,
    nonce: str,
    qr_svg: str,
    uri: str,
    secret: str,
    error: str | None,
    links: Iterable[tuple[str, str]] = (),
) -> str:
    """Scan the QR code (or type the key), then confirm with one code."""
    parts = ["<h1>Set up an authenticator app</h1>"]
    if error:
        parts.append(alert(error, MESSAGES.get(error, MESSAGES["InvalidCode"])))
    grouped = " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))
    parts.append(
        "<p>Scan this code with your authenticator app, then enter the 6-digit code it "
        "shows.</p>"
        f"<figure class=qr>{qr_svg}</figure>"
        f"<p>Or enter this key: <code data-totp-secret>{escape(grouped)}</code></p>"
        f'<p class=links><a href="{escape(uri)}" data-totp-uri>Open in an authenticator '
        "app on this device</a></p>"
    )
    parts.append(_code_form(action, csrf_token, {}, "Turn on two-factor sign-in"))
    body = "".join(parts) + links_paragraph(links)
    return document("Set up an authenticator app", body, nonce)


def recovery_codes_page(
    codes: Sequence[str], *, continue_url: str, nonce: str, title: str = "Your recovery codes"
) -> str:
    """The codes, shown this once: each signs in once in place of a code from the app."""
    items = "".join(f"<li><code>{escape(code)}</code></li>" for code in codes)
    body = (
        f"<h1>{escape(title)}</h1>"
        "<p>Keep these codes somewhere safe. Each one works once, in place of a code from "
        "your authenticator app, if you lose it. They will not be shown again.</p>"
        f"<ol data-recovery-codes>{items}</ol>"
        f'<p class=links><a href="{escape(continue_url)}">Continue</a></p>'
    )
    return document(title, body, nonce)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _post_button(action: str, csrf_token: str, label: str, fields: dict[str, str]) -> str:
    hidden = hidden_input("csrfToken", csrf_token) + "".join(
        hidden_input(name, value) for name, value in fields.items()
    )
    return (
        f'<form method=post action="{escape(action)}" class=inline>{hidden}'
        f"<button type=submit>{escape(label)}</button></form>"
    )


@dataclass(frozen=True, slots=True)
class SecurityPage:
    """What the account's security page shows and where its forms post."""

    csrf_token: str
    totp: bool
    recovery_codes_left: int
    totp_url: str | None
    disable_totp_url: str
    recovery_codes_url: str
    passkeys: tuple[Authenticator, ...]
    rename_url: str
    delete_url: str
    add_passkey: PasskeyButton | None
    message: str | None = None
    error: str | None = None


def security_page(page: SecurityPage, *, nonce: str, links: Iterable[tuple[str, str]]) -> str:
    """Factors and passkeys, with the actions to add, rename and remove them."""
    parts = ["<h1>Sign-in and security</h1>"]
    if page.error:
        parts.append(alert(page.error, MESSAGES.get(page.error, "That did not work.")))
    if page.message:
        parts.append(f"<p role=status>{escape(page.message)}</p>")
    if page.totp_url is not None:
        parts.append("<h2>Authenticator app</h2>")
        if page.totp:
            parts.append(
                f"<p data-factor=totp>On. {page.recovery_codes_left} recovery codes left.</p>"
            )
            parts.append(
                _post_button(page.recovery_codes_url, page.csrf_token, "New recovery codes", {})
            )
            parts.append(_post_button(page.disable_totp_url, page.csrf_token, "Turn off", {}))
        else:
            parts.append(
                "<p data-factor=totp>Off.</p>"
                f'<p class=links><a href="{escape(page.totp_url)}">Set up an authenticator '
                "app</a></p>"
            )
    if page.add_passkey is not None:
        parts.append("<h2>Passkeys</h2>")
        rows = []
        for passkey in page.passkeys:
            name = passkey.name or "Passkey"
            credential = {"credentialId": passkey.credential_id}
            rows.append(
                f'<li data-passkey-id="{escape(passkey.credential_id)}">'
                f"<strong>{escape(name)}</strong> added {_when(passkey.created_at)}, "
                f"last used {_when(passkey.last_used_at)}"
                f'<form method=post action="{escape(page.rename_url)}" class=inline>'
                f"{hidden_input('csrfToken', page.csrf_token)}"
                f"{hidden_input('credentialId', passkey.credential_id)}"
                "<label>New name <input name=name type=text maxlength=64 required></label>"
                "<button type=submit>Rename</button></form>"
                f"{_post_button(page.delete_url, page.csrf_token, 'Remove', credential)}</li>"
            )
        parts.append(f"<ul>{''.join(rows)}</ul>" if rows else "<p>No passkeys yet.</p>")
        parts.append(passkey_button(page.add_passkey))
    body = "".join(parts) + links_paragraph(links)
    return document(
        "Sign-in and security", body + (script(nonce) if page.add_passkey else ""), nonce
    )


def reauthenticate_page(
    *,
    nonce: str,
    csrf_token: str,
    callback_url: str,
    password: tuple[str, str, str] | None,
    totp_action: str | None,
    passkey: PasskeyButton | None,
    error: str | None,
    sign_in_url: str,
) -> str:
    """Prove it is still you: the password (``(action, email, field name)``), a TOTP
    code or a passkey, whichever the account has; or sign in again, any way
    (``sign_in_url``)."""
    parts = [
        "<h1>Confirm it is you</h1>",
        "<p>This needs a recent sign-in. Confirm who you are to go on.</p>",
    ]
    if error:
        parts.append(alert(error, MESSAGES.get(error, MESSAGES["InvalidCode"])))
    forms = []
    if password is not None:
        action, email, _ = password
        forms.append(
            f'<form method=post action="{escape(action)}">'
            f"{hidden_input('csrfToken', csrf_token)}{hidden_input('callbackUrl', callback_url)}"
            f"{hidden_input('email', email)}"
            "<label for=input-password>Password</label>"
            "<input id=input-password name=password type=password "
            "autocomplete=current-password required>"
            "<button type=submit>Confirm with password</button></form>"
        )
    if totp_action is not None:
        forms.append(_code_form(totp_action, csrf_token, {"callbackUrl": callback_url}, "Confirm"))
    if passkey is not None:
        forms.append(passkey_button(passkey))
    forms.append(
        f'<p class=links><a href="{escape(sign_in_url)}" data-sign-in-again>Sign in again '
        "another way</a></p>"
    )
    body = "".join(parts) + "<hr>".join(forms)
    return document("Confirm it is you", body + (script(nonce) if passkey else ""), nonce)
