"""Second factors: what a user has enrolled, and proving one after a first factor.

A sign-in whose first factor succeeded for a user with a second factor ends here instead
of in a session (see :func:`asgi_session._signin.complete_sign_in`): the browser gets a
short-lived encrypted *challenge* naming the user and what the sign-in would have
started, and ``/auth/mfa`` asks for a code. The right code finishes the same sign-in,
through the same function every sign-in ends in.

Storage stays within Auth.js's records, so no adapter needs anything new:

- TOTP: an account ``{type: "totp", provider: "totp", providerAccountId: <user id>}``
  holding the secret sealed with a key derived from the auth secret
  (:func:`asgi_session._totp.seal`) and the last time step used.
- Recovery codes: single-use verification tokens (their hashes) under an identifier
  naming the user and the set's generation, so using one is the adapter's atomic
  "use a token once", and a regenerated set leaves the old one unreachable; an
  account ``{type: "recovery-codes", ...}`` keeps the generation and how many are left.
- Passkeys: Auth.js's Authenticator records (a passkey satisfies the second factor by
  being a sign-in of its own: see ``providers/_passkey.py``).

Replays: a TOTP code is refused unless its time step is later than the last one used,
and each step is also claimed once in the rate limit store (an atomic count), so two
requests racing with one code cannot both pass.
"""

from __future__ import annotations

import importlib.util
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from asgi_session import _totp as totp
from asgi_session._ratelimit import Counted, RateLimit, count, count_once
from asgi_session.backends._adapter import AuthenticatorStore, TokenSweeper
from asgi_session.errors import ConfigurationError, DuplicateRecordError
from asgi_session.jwt import JWTCodec, JWTDecodeError
from asgi_session.models import Authenticator

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._context import RequestContext
    from asgi_session.backends._adapter import Adapter
    from asgi_session.models import Account

TOTP_PROVIDER = "totp"
RECOVERY_PROVIDER = "recovery-codes"
#: Provider ids second factors keep their records under: no sign-in provider may take them.
RESERVED_PROVIDER_IDS = frozenset({TOTP_PROVIDER, RECOVERY_PROVIDER})
#: Purposes of sealed values, each with its own key.
_TOTP_SECRET = "totp secret"  # noqa: S105 (a purpose, not a secret)
#: How long recovery codes stay stored: until replaced, in practice.
_RECOVERY_LIFETIME = timedelta(days=365 * 100)
#: A TOTP step's claim outlives the steps a code is accepted in (±1 of 30 s).
_STEP_CLAIM_SECONDS = 120
#: Seconds a TOTP enrolment may take between showing the QR code and the first code.
ENROLMENT_MAX_AGE = 10 * 60

Proof = Literal["totp", "recovery-code"]


@dataclass(frozen=True, slots=True)
class TwoFactor:
    """Second factors for sign-in (``AuthConfig(two_factor=TwoFactor())``).

    Signed-in users enrol an authenticator app (TOTP) at ``/auth/mfa/totp`` and get
    ``recovery_codes`` single-use codes; from then on every sign-in with another factor
    (a password, a magic link, OAuth) asks for a code before any session starts. A
    passkey (with the ``Passkey`` provider) answers that question too, in place of the
    code, and a passkey sign-in is never asked it: it proves possession and the user's
    PIN or biometric at once. Adding a passkey alone does not turn the question on:
    only the authenticator app does, and it comes with the recovery codes that keep a
    lost phone from locking anyone out.

    - ``issuer``: the name authenticator apps show (default: the app's host).
    - ``recovery_codes``: how many codes a set holds (10).
    - ``challenge_max_age``: seconds between the first factor and the code (300).
    - ``max_attempts``: wrong codes that end a challenge (5): the user starts over.
    """

    issuer: str | None = None
    recovery_codes: int = 10
    challenge_max_age: int = 300
    max_attempts: int = 5

    def __post_init__(self) -> None:
        for name, value in (
            ("recovery_codes", self.recovery_codes),
            ("challenge_max_age", self.challenge_max_age),
            ("max_attempts", self.max_attempts),
        ):
            if type(value) is not int or value < 1:
                raise ConfigurationError(f"TwoFactor({name}={value!r}) must be a positive number")
        if self.issuer is not None and (not isinstance(self.issuer, str) or ":" in self.issuer):
            raise ConfigurationError(
                f"TwoFactor(issuer={self.issuer!r}) must be a name without ':' (authenticator "
                "apps show it next to the account)"
            )


def check_config(config: AuthConfig) -> None:
    """Fail at start-up when second factors cannot work with ``config``."""
    adapter = config.adapter
    if adapter is None:
        raise ConfigurationError(
            "AuthConfig(two_factor=...) needs an adapter to keep enrolled factors in, e.g. "
            "AuthConfig(adapter=MongoDBAdapter(db), two_factor=TwoFactor())"
        )
    if not isinstance(adapter, TokenSweeper):
        raise ConfigurationError(
            f"AuthConfig(two_factor=...) needs {type(adapter).__name__} to implement "
            "delete_verification_tokens(identifier): regenerating recovery codes removes "
            "the old ones"
        )
    taken = RESERVED_PROVIDER_IDS & set(config.providers)
    if taken:
        raise ConfigurationError(
            f"the provider id {sorted(taken)[0]!r} is where second factors are stored; "
            "give that provider another id=..."
        )
    require_libraries()


def require_libraries() -> None:
    """Fail at start-up, saying what to install, when the optional libraries are missing."""
    missing = [name for name in ("pyotp", "segno") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(
            f"two-factor sign-in needs {' and '.join(missing)}: pip install 'asgi-session[mfa]'"
        )


def looks_like_totp(code: str) -> bool:
    """Six ASCII digits (spaces allowed, as apps show them in groups): a TOTP code."""
    digits = code.replace(" ", "")
    return len(digits) == 6 and digits.isascii() and digits.isdigit()


def _adapter(config: AuthConfig) -> Adapter:
    adapter = config.adapter
    if adapter is None:
        raise ConfigurationError("second factors need AuthConfig(adapter=...)")
    return adapter


# -- what a user has --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A user's second factors."""

    totp: bool
    recovery_codes_left: int
    passkeys: tuple[Authenticator, ...]

    @property
    def any(self) -> bool:
        """Whether a sign-in with another factor must prove a second one (TOTP is on)."""
        return self.totp


async def passkeys_of(config: AuthConfig, user_id: str) -> list[Authenticator]:
    """The user's passkeys, oldest first (none when no ``Passkey`` provider stores them)."""
    adapter = config.adapter
    if not isinstance(adapter, AuthenticatorStore) or not any(
        provider.type == "webauthn" for provider in config.providers.values()
    ):
        return []
    return await adapter.list_authenticators_by_user_id(user_id)


async def enrolled(config: AuthConfig, user_id: str) -> Enrolled:
    """What ``user_id`` has enrolled."""
    adapter = _adapter(config)
    secret = await adapter.get_account(provider=TOTP_PROVIDER, provider_account_id=user_id)
    codes = await adapter.get_account(provider=RECOVERY_PROVIDER, provider_account_id=user_id)
    left = codes.extra.get("remaining") if codes is not None else 0
    return Enrolled(
        totp=secret is not None,
        recovery_codes_left=left if isinstance(left, int) and left > 0 else 0,
        passkeys=tuple(await passkeys_of(config, user_id)),
    )


async def required(config: AuthConfig, user_id: str) -> bool:
    """Whether a sign-in of ``user_id`` with another factor must prove a second one:
    whether TOTP is on (a passkey then answers in place of a code, but alone it turns
    nothing on: it comes with no recovery codes)."""
    adapter = _adapter(config)
    found = await adapter.get_account(provider=TOTP_PROVIDER, provider_account_id=user_id)
    return found is not None


# -- proving one --------------------------------------------------------------------------


async def prove(config: AuthConfig, user_id: str, code: str, now: float) -> Proof | None:
    """Whether ``code`` is a good TOTP code or an unused recovery code of ``user_id``.

    Six digits are a TOTP code; anything else is tried as a recovery code. Either is
    used up by succeeding here.
    """
    if looks_like_totp(code):
        return "totp" if await _prove_totp(config, user_id, code, now) else None
    return "recovery-code" if await _use_recovery_code(config, user_id, code) else None


async def _prove_totp(config: AuthConfig, user_id: str, code: str, now: float) -> bool:
    adapter = _adapter(config)
    account = await adapter.get_account(provider=TOTP_PROVIDER, provider_account_id=user_id)
    secret = _open_secret(config, account, user_id)
    if account is None or secret is None:
        return False
    step = totp.matching_step(secret[0], code, now)
    last = account.extra.get("lastUsedStep")
    if step is None or (isinstance(last, int) and step <= last):
        # A code already used, or one older than it: a replay, whoever sends it.
        return False
    claims = await count_once(
        config.rate_limit_store, f"totp-step:{user_id}:{step}", now + _STEP_CLAIM_SECONDS, now
    )
    if claims != 1:
        return False
    changes: dict[str, Any] = {"lastUsedStep": step}
    if secret[1]:
        # Opened only with an older auth secret: sealed again with the current one.
        changes["secret"] = totp.seal(config.secrets, _TOTP_SECRET, secret[0], bind=user_id)
    await adapter.update_account(provider=TOTP_PROVIDER, provider_account_id=user_id, data=changes)
    return True


def _open_secret(
    config: AuthConfig, account: Account | None, user_id: str
) -> tuple[str, bool] | None:
    sealed = None if account is None else account.extra.get("secret")
    if not isinstance(sealed, str):
        return None
    try:
        return totp.open_sealed(config.secrets, _TOTP_SECRET, sealed, bind=user_id)
    except totp.SealedValueError:
        # Sealed with a secret no longer configured, or copied from another user.
        return None


def _recovery_identifier(user_id: str, generation: str) -> str:
    return f"recovery-code:{user_id}:{generation}"


async def _use_recovery_code(config: AuthConfig, user_id: str, code: str) -> bool:
    normalised = totp.normalise_recovery_code(code)
    if normalised is None:
        return False
    adapter = _adapter(config)
    account = await adapter.get_account(provider=RECOVERY_PROVIDER, provider_account_id=user_id)
    generation = None if account is None else account.extra.get("generation")
    if account is None or not isinstance(generation, str):
        return False
    identifier = _recovery_identifier(user_id, generation)
    for secret in config.secrets:
        used = await adapter.use_verification_token(
            identifier=identifier, token=totp.hash_recovery_code((secret,), normalised)
        )
        if used is not None:
            left = account.extra.get("remaining")
            if isinstance(left, int) and left > 0:
                # A count to show the user; the tokens themselves are what is checked.
                await adapter.update_account(
                    provider=RECOVERY_PROVIDER,
                    provider_account_id=user_id,
                    data={"remaining": left - 1},
                )
            return True
    return False


# -- enrolling ------------------------------------------------------------------------------


def issuer_of(config: AuthConfig, host: str) -> str:
    two_factor = config.two_factor
    if two_factor is not None and two_factor.issuer:
        return two_factor.issuer
    return host.partition(":")[0] or "asgi-session"


async def enable_totp(
    config: AuthConfig, user_id: str, secret: str, code: str, now: float
) -> list[str] | None:
    """Enrol ``secret`` for ``user_id`` if ``code`` is one of its codes now: the new
    recovery codes (shown once), or ``None`` when the code is wrong.

    Raises :class:`~asgi_session.errors.DuplicateRecordError` when TOTP is enrolled already.
    """
    step = totp.matching_step(secret, code, now)
    if step is None:
        return None
    adapter = _adapter(config)
    await adapter.link_account(
        {
            "user_id": user_id,
            "type": TOTP_PROVIDER,
            "provider": TOTP_PROVIDER,
            "provider_account_id": user_id,
            "secret": totp.seal(config.secrets, _TOTP_SECRET, secret, bind=user_id),
            # The code that confirmed it cannot sign in afterwards.
            "lastUsedStep": step,
            "createdAt": datetime.fromtimestamp(now, UTC),
        }
    )
    return await regenerate_recovery_codes(config, user_id, now)


async def regenerate_recovery_codes(config: AuthConfig, user_id: str, now: float) -> list[str]:
    """A new set of recovery codes for ``user_id``; the old set stops working."""
    adapter = _adapter(config)
    two_factor = config.two_factor
    count = two_factor.recovery_codes if two_factor is not None else TwoFactor().recovery_codes
    generation = random.token_hex(8)
    codes = totp.new_recovery_codes(count)
    expires = datetime.fromtimestamp(now, UTC) + _RECOVERY_LIFETIME
    identifier = _recovery_identifier(user_id, generation)
    for code in codes:
        await adapter.create_verification_token(
            {
                "identifier": identifier,
                "token": totp.hash_recovery_code(config.secrets, code),
                "expires": expires,
            }
        )
    await _replace_recovery_account(adapter, user_id, generation, len(codes), now)
    return codes


async def _replace_recovery_account(
    adapter: Adapter, user_id: str, generation: str, count: int, now: float
) -> None:
    previous = await adapter.get_account(provider=RECOVERY_PROVIDER, provider_account_id=user_id)
    data = {"generation": generation, "remaining": count}
    if previous is None:
        try:
            await adapter.link_account(
                {
                    "user_id": user_id,
                    "type": RECOVERY_PROVIDER,
                    "provider": RECOVERY_PROVIDER,
                    "provider_account_id": user_id,
                    "createdAt": datetime.fromtimestamp(now, UTC),
                    **data,
                }
            )
            return
        except DuplicateRecordError:
            pass  # made by a request alongside this one: this set replaces it
    await adapter.update_account(provider=RECOVERY_PROVIDER, provider_account_id=user_id, data=data)
    old = None if previous is None else previous.extra.get("generation")
    if isinstance(old, str) and old != generation:
        await _sweep(adapter, _recovery_identifier(user_id, old))


async def _sweep(adapter: Adapter, identifier: str) -> None:
    if isinstance(adapter, TokenSweeper):
        await adapter.delete_verification_tokens(identifier)


async def disable_totp(config: AuthConfig, user_id: str) -> bool:
    """Remove ``user_id``'s TOTP and its recovery codes (with nothing asked for after the
    first factor, a code would only be a way in); whether TOTP was on."""
    adapter = _adapter(config)
    removed = await adapter.unlink_account(provider=TOTP_PROVIDER, provider_account_id=user_id)
    await remove_recovery_codes(config, user_id)
    return removed is not None


async def remove_passkey(config: AuthConfig, passkey: Authenticator) -> None:
    """Delete ``passkey`` and the account it signs in with."""
    adapter = _adapter(config)
    if isinstance(adapter, AuthenticatorStore):
        await adapter.delete_authenticator(passkey.credential_id)
    for provider in config.providers.values():
        if provider.type == "webauthn":
            await adapter.unlink_account(
                provider=provider.id, provider_account_id=passkey.provider_account_id
            )


async def reset(config: AuthConfig, user_id: str, *, passkeys: bool = True) -> None:
    """Remove every second factor of ``user_id``: TOTP, recovery codes and (unless told
    not to) passkeys."""
    if config.two_factor is None and not any(
        provider.type == "webauthn" for provider in config.providers.values()
    ):
        return
    adapter = _adapter(config)
    await adapter.unlink_account(provider=TOTP_PROVIDER, provider_account_id=user_id)
    await remove_recovery_codes(config, user_id)
    if passkeys:
        for passkey in await passkeys_of(config, user_id):
            await remove_passkey(config, passkey)


async def remove_recovery_codes(config: AuthConfig, user_id: str) -> None:
    adapter = _adapter(config)
    account = await adapter.unlink_account(provider=RECOVERY_PROVIDER, provider_account_id=user_id)
    generation = None if account is None else account.extra.get("generation")
    if isinstance(generation, str):
        await _sweep(adapter, _recovery_identifier(user_id, generation))


# -- the challenge between the factors ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """A sign-in waiting for its second factor: what it would have started."""

    #: Random: names the challenge's attempt counter.
    id: str
    user_id: str
    #: The account the first factor signed in with (token fields kept when they fit).
    account: Mapping[str, Any]
    profile: Mapping[str, Any] | None
    is_new_user: bool
    #: Where the sign-in ends (already checked by the redirect rules).
    target: str
    expires: float


#: A challenge larger than this drops the profile, then the account's tokens: it is a
#: cookie, and with the session's own cookie it must stay within what browsers keep.
_MAX_CHALLENGE = 3000


def _codec(config: AuthConfig, salt: str) -> JWTCodec:
    return JWTCodec(config.secrets, salt)


def _opened(
    ctx: RequestContext, salt: str, token: str | None, longest: int
) -> dict[str, Any] | None:
    """The claims of a token this module sealed under ``salt``; ``None`` when missing,
    too long to be one, tampered with or expired."""
    if not token or len(token) > longest:
        return None
    try:
        return _codec(ctx.config, salt).decode(token, now=ctx.now)
    except JWTDecodeError:
        return None


def seal_challenge(ctx: RequestContext, challenge: Challenge) -> str:
    """The challenge as an encrypted token (the value of its cookie, or of a bearer
    client's ``challenge`` field)."""
    config = ctx.config
    max_age = _max_age(config)
    codec = _codec(config, ctx.names.two_factor.name)
    account = dict(challenge.account)
    names = {
        key: account[key] for key in ("provider", "type", "providerAccountId") if key in account
    }
    token = ""
    for account_part, profile in (
        (account, challenge.profile),
        (account, None),
        (names, None),
    ):
        claims = {
            "sub": challenge.user_id,
            "cid": challenge.id,
            "account": account_part,
            "profile": None if profile is None else dict(profile),
            "new": challenge.is_new_user,
            "to": challenge.target,
        }
        token = codec.encode(claims, max_age=max_age, now=ctx.now)
        if len(token) <= _MAX_CHALLENGE:
            break
    return token


def new_challenge(
    ctx: RequestContext,
    *,
    user_id: str,
    account: Mapping[str, Any],
    profile: Mapping[str, Any] | None,
    is_new_user: bool,
    target: str,
) -> Challenge:
    return Challenge(
        id=random.token_urlsafe(16),
        user_id=user_id,
        account=account,
        profile=profile,
        is_new_user=is_new_user,
        target=target,
        expires=ctx.now + _max_age(ctx.config),
    )


def open_challenge(ctx: RequestContext, token: str | None) -> Challenge | None:
    """The challenge ``token`` stands for; ``None`` when missing, expired or tampered."""
    claims = _opened(ctx, ctx.names.two_factor.name, token, 2 * _MAX_CHALLENGE)
    if claims is None:
        return None
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or ctx.now >= expires:
        # Past its end, though within the codec's clock tolerance: its attempt counter
        # (which lives until ``expires``) is gone, and every code would be a first try.
        return None
    user_id, challenge_id, target = claims.get("sub"), claims.get("cid"), claims.get("to")
    account, profile = claims.get("account"), claims.get("profile")
    if not (
        isinstance(user_id, str)
        and isinstance(challenge_id, str)
        and isinstance(target, str)
        and isinstance(account, dict)
        and (profile is None or isinstance(profile, dict))
    ):
        return None
    return Challenge(
        id=challenge_id,
        user_id=user_id,
        account=account,
        profile=profile,
        is_new_user=claims.get("new") is True,
        target=target,
        expires=float(expires),
    )


#: The token fields of an OAuth account, as the ``jwt`` callback is handed them.
_TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "expires_at",
    "token_type",
    "scope",
    "id_token",
    "session_state",
)


async def account_of(config: AuthConfig, challenge: Challenge) -> dict[str, Any]:
    """The account the sign-in ends with, as the ``jwt`` callback sees it: token fields
    too large for the challenge's cookie are read back from the account, where the
    first step stored them."""
    account = dict(challenge.account)
    provider, account_id = account.get("provider"), account.get("providerAccountId")
    if (
        account.get("type") not in ("oauth", "oidc")
        or any(field in account for field in _TOKEN_FIELDS)
        or not isinstance(provider, str)
        or not isinstance(account_id, str)
    ):
        return account
    stored = await _adapter(config).get_account(provider=provider, provider_account_id=account_id)
    if stored is not None:
        for field in _TOKEN_FIELDS:
            value = getattr(stored, field)
            if value is not None:
                account[field] = value
    return account


def _max_age(config: AuthConfig) -> int:
    two_factor = config.two_factor
    return two_factor.challenge_max_age if two_factor is not None else 300


async def attempts_left(config: AuthConfig, challenge: Challenge, now: float) -> int | None:
    """Count one code tried against ``challenge``: how many more it allows after this
    one, or ``None`` when this one is past ``max_attempts`` (the challenge is over).

    Counted before the code is checked, in the rate limit store (atomically), so codes
    sent all at once cannot outrun the count, and a replayed cookie carries no count of
    its own. Always on, whatever ``AuthConfig(rate_limits=...)`` says: it is what makes
    six digits enough.
    """
    two_factor = config.two_factor
    limit = two_factor.max_attempts if two_factor is not None else 5
    count = await count_once(
        config.rate_limit_store, f"two-factor-challenge:{challenge.id}", challenge.expires, now
    )
    return None if count > limit else limit - count


async def claim_finish(config: AuthConfig, challenge: Challenge, now: float) -> bool:
    """Whether ``challenge`` may finish its sign-in now: once only, so its cookie, if
    copied, starts no second session with a later code."""
    uses = await count_once(
        config.rate_limit_store, f"two-factor-finished:{challenge.id}", challenge.expires, now
    )
    return uses == 1


#: Wrong codes one session may send to ``/reauthenticate`` per period: the cookie may be
#: a thief's, guessing codes to make it fresh.
_REAUTHENTICATION_PERIOD = 900


async def reauthentication_attempt(config: AuthConfig, session_key: str, now: float) -> Counted:
    """Count a code sent to make the session ``session_key`` fresh: refused
    (``retry_after`` set) past ``max_attempts`` in the period. Always on, like a
    challenge's count; a right code is taken back (:func:`asgi_session._ratelimit.release`),
    so only wrong ones add up."""
    two_factor = config.two_factor
    limit = RateLimit(
        two_factor.max_attempts if two_factor is not None else 5, _REAUTHENTICATION_PERIOD
    )
    return await count(config.rate_limit_store, [("reauthenticate", limit, session_key)], now)


# -- enrolment in progress -------------------------------------------------------------------


def seal_enrolment(ctx: RequestContext, user_id: str, secret: str) -> str:
    """A TOTP secret being enrolled, kept in a cookie until its first code confirms it:
    nothing is stored for a QR code nobody scans."""
    codec = _codec(ctx.config, ctx.names.totp_enrolment.name)
    return codec.encode({"sub": user_id, "secret": secret}, max_age=ENROLMENT_MAX_AGE, now=ctx.now)


def open_enrolment(ctx: RequestContext, token: str | None, user_id: str) -> str | None:
    """The secret being enrolled by ``user_id``, if the cookie is theirs and current."""
    claims = _opened(ctx, ctx.names.totp_enrolment.name, token, 2048)
    if claims is None:
        return None
    secret = claims.get("secret")
    if claims.get("sub") != user_id or not isinstance(secret, str):
        return None
    return secret
