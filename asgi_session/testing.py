"""The adapter contract as a pytest class, for adapters of your own.

Every adapter asgi-session ships runs this very suite, as Auth.js's adapters run
``@auth/adapter-test``. Subclass :class:`AdapterContract` in a test module and give it
an ``adapter`` fixture yielding a fresh, empty adapter::

    import pytest
    from asgi_session.testing import AdapterContract

    class TestRedisAdapter(AdapterContract):
        @pytest.fixture
        async def adapter(self):
            adapter = RedisAdapter(...)  # over a database of its own, emptied
            yield adapter
            await adapter.close()

Importing this module needs pytest and pytest-asyncio (``pip install pytest
pytest-asyncio``); nothing else in asgi-session imports it, so an app needs neither.
The tests are coroutines and carry the ``asyncio`` mark, so they run whether your
project sets pytest-asyncio's ``asyncio_mode = "auto"`` or keeps the default strict
mode; in strict mode an asynchronous ``adapter`` fixture must be declared with
``@pytest_asyncio.fixture``. A fixture that shares something with other tests (a client,
a server) must live on the same event loop as the tests: pytest-asyncio's
``asyncio_default_fixture_loop_scope`` and ``asyncio_default_test_loop_scope`` settings
set both.

What an adapter must do is :class:`~asgi_session.backends.Adapter`'s contract. The
optional capabilities, :class:`~asgi_session.backends.TokenSweeper` (asked for by
password accounts) and :class:`~asgi_session.backends.AuthenticatorStore` (asked for by
passkeys), are tested when the adapter has them and skipped, naming the protocol, when
it does not: an adapter without them still works with every other provider.
"""

# Tests, not app code: the tokens and secrets here are made-up values for the adapter to
# store, as in tests/, where these checks are off.
# ruff: noqa: S105, S106

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from asgi_session.backends import Adapter, AuthenticatorStore, TokenSweeper
from asgi_session.errors import DuplicateRecordError
from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken

__all__ = ["AdapterContract"]

# What DuplicateRecordError and ValueError say in the package's adapters, word for word;
# checked when AdapterContract.exact_messages is set.
_TAKEN_EMAIL = "^a user with this email already exists$"
_TAKEN_ACCOUNT = "^this provider account is already linked to a user$"
_TAKEN_SESSION_TOKEN = "^a session with this token already exists$"
_TAKEN_VERIFICATION_TOKEN = "^this verification token already exists$"
_TAKEN_CREDENTIAL = "^an authenticator with this credential id is already registered$"
_EMAIL_NEEDED = "^a user needs email$"
_EMAIL_KEPT = "^a user's email cannot be None$"

#: Values that are not datetimes, though each names a moment one way or another.
_NOT_DATETIMES = [
    "2030-01-01T00:00:00Z",
    1_900_000_000,
    date(2030, 1, 1),
]

#: Ids no test stores, of shapes no adapter makes: looking them up must find nothing
#: (and raise nothing), whatever ids the adapter makes.
_MALFORMED_IDS = ["", "nope", "0" * 23, "0" * 25, "g" * 24, "abcdefghijkl", "../../etc"]


def _later(**delta: float) -> datetime:
    """A time from now, at the millisecond precision adapters keep."""
    moment = datetime.now(UTC) + timedelta(**delta)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def _make_user(adapter: Adapter, email: str = "ada@example.com", **more: Any) -> User:
    """Ada (or whoever ``email`` names), stored through ``adapter``."""
    return await adapter.create_user({"name": "Ada", "email": email, **more})


async def _make_session(
    adapter: Adapter, user: User, token: str | None = None, **more: Any
) -> SessionRecord:
    """A session of ``user`` lasting 30 days; a fresh token unless one is given."""
    return await adapter.create_session(
        {
            "session_token": token or uuid.uuid4().hex,
            "user_id": user.id,
            "expires": _later(days=30),
            **more,
        }
    )


def _account_data(user: User, provider_account_id: str = "gh-1", **more: Any) -> dict[str, Any]:
    """A GitHub account of ``user``, with every token field set."""
    return {
        "user_id": user.id,
        "type": "oauth",
        "provider": "github",
        "provider_account_id": provider_account_id,
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "expires_at": 1_900_000_000,
        "token_type": "bearer",
        "scope": "read:user",
        **more,
    }


# -- authenticators (passkeys) -----------------------------------------------------------
# Standard base64 with padding, as Auth.js spells credential ids and public keys.
_CREDENTIAL_ID = "AAECAwQFBgcICQoLDA0ODw=="
_OTHER_CREDENTIAL_ID = "EBESExQVFhcYGRobHB0eHw=="
_PUBLIC_KEY = "pQECAyYgASFYIGZha2Uta2V5LWZvci10ZXN0cy1vbmx5LWZha2Uta2V5Ilgg"

_REQUIRED_AUTHENTICATOR_FIELDS = [
    "credential_id",
    "user_id",
    "provider_account_id",
    "credential_public_key",
    "counter",
    "credential_device_type",
    "credential_backed_up",
]
#: Auth.js's name of each field it stores under another name than ours.
_AUTHJS_AUTHENTICATOR_NAMES = {
    "credential_id": "credentialID",
    "user_id": "userId",
    "provider_account_id": "providerAccountId",
    "credential_public_key": "credentialPublicKey",
    "credential_device_type": "credentialDeviceType",
    "credential_backed_up": "credentialBackedUp",
    "created_at": "createdAt",
    "last_used_at": "lastUsedAt",
}


@runtime_checkable
class _PasskeyAdapter(Adapter, AuthenticatorStore, Protocol):
    """What passkeys ask of an adapter: the contract and the authenticator methods."""


def _passkey_data(user: User, credential_id: str = _CREDENTIAL_ID, **more: Any) -> dict[str, Any]:
    """A synced passkey of ``user`` that keeps no counter, under Python names."""
    return {
        "credential_id": credential_id,
        "user_id": user.id,
        "provider_account_id": credential_id,
        "credential_public_key": _PUBLIC_KEY,
        "counter": 0,
        "credential_device_type": "multiDevice",
        "credential_backed_up": True,
        "transports": "internal,hybrid",
        **more,
    }


async def _make_passkey(
    adapter: _PasskeyAdapter, user: User, credential_id: str = _CREDENTIAL_ID, **more: Any
) -> Authenticator:
    return await adapter.create_authenticator(_passkey_data(user, credential_id, **more))


@pytest.mark.asyncio
class AdapterContract:
    """The tests every adapter passes; subclass it with an ``adapter`` fixture.

    Each test gets a fresh, empty adapter from the fixture. Settings, as class
    attributes of the subclass:

    - ``unknown_id``: a user id of the shape the adapter's ids have that no test stores
      (default: 24 hex digits, the shape of a MongoDB ObjectId and of the package's ids).
    - ``id_pattern``: a regular expression every id the adapter makes (of users,
      accounts, sessions) must match in full; ``None`` (the default) asks only for a
      string that is not empty.
    - ``exact_messages``: also check what each ``ValueError`` and
      ``DuplicateRecordError`` says, word for word as the package's adapters say it.
      Off by default: callers rely on the exception types, not on the wording.
    - ``users_need_an_email``: the store requires every user to have an email (Better
      Auth's ``user.email`` is ``NOT NULL``): creating a user without one, or setting it
      to ``None``, is then expected to raise ``ValueError`` and change nothing, where
      otherwise any number of users may have none. Off by default.
    """

    unknown_id: ClassVar[str] = "0123456789abcdef01234567"
    id_pattern: ClassVar[re.Pattern[str] | None] = None
    exact_messages: ClassVar[bool] = False
    users_need_an_email: ClassVar[bool] = False

    @pytest.fixture
    def adapter(self) -> Adapter:
        """A fresh, empty adapter: what a subclass must give."""
        pytest.fail(
            f"{type(self).__name__} needs an `adapter` fixture returning a fresh, empty "
            "adapter: define one on the class",
            pytrace=False,
        )

    @pytest.fixture
    def passkeys(self, adapter: Adapter) -> _PasskeyAdapter:
        """The adapter, when it keeps authenticators too."""
        if not isinstance(adapter, _PasskeyAdapter):
            pytest.skip(
                f"{type(adapter).__name__} is no AuthenticatorStore "
                "(asgi_session.backends.AuthenticatorStore), which passkeys ask for"
            )
        return adapter

    def is_an_id(self, value: object) -> bool:
        """Whether ``value`` is an id the adapter could have made."""
        if not isinstance(value, str) or not value:
            return False
        return self.id_pattern is None or self.id_pattern.fullmatch(value) is not None

    @contextlib.contextmanager
    def refused(self, message: str) -> Iterator[None]:
        """Expect a ``ValueError`` (saying ``message``, a pattern, when messages count)."""
        with pytest.raises(ValueError, match=message if self.exact_messages else None):
            yield

    @contextlib.contextmanager
    def taken(self, message: str) -> Iterator[None]:
        """Expect a ``DuplicateRecordError`` (saying ``message`` when messages count)."""
        with pytest.raises(DuplicateRecordError, match=message if self.exact_messages else None):
            yield

    async def test_backend_satisfies_the_adapter_protocol(self, adapter: Adapter) -> None:
        assert isinstance(adapter, Adapter)
        await adapter.ensure_indexes()

    # -- users -----------------------------------------------------------------------------

    async def test_create_user_keeps_every_field(self, adapter: Adapter) -> None:
        verified = _later(minutes=-5)

        user = await adapter.create_user(
            {
                "name": "Ada",
                "email": "ada@example.com",
                "image": "https://example.com/ada.png",
                "email_verified": verified,
                "role": "admin",
            }
        )

        assert user == User(
            id=user.id,
            name="Ada",
            email="ada@example.com",
            image="https://example.com/ada.png",
            email_verified=verified,
            extra={"role": "admin"},
        )
        assert self.is_an_id(user.id)
        assert await adapter.get_user(user.id) == user

    async def test_create_user_absent_fields_are_none(self, adapter: Adapter) -> None:
        # Only the fields given are stored; the others read as None, as do those given as
        # None.
        verified = _later()

        user = await adapter.create_user({"email": "bob@example.com", "email_verified": verified})
        explicit = await adapter.create_user(
            {"email": "cy@example.com", "name": None, "image": None}
        )

        assert user == User(id=user.id, email="bob@example.com", email_verified=verified)
        assert explicit == User(id=explicit.id, email="cy@example.com")
        assert await adapter.get_user(user.id) == user
        assert await adapter.get_user(explicit.id) == explicit

    async def test_create_user_accepts_the_record_type(self, adapter: Adapter) -> None:
        user = await adapter.create_user(
            User(id="", name="Cy", email="cy@example.com", extra={"locale": "fr"})
        )

        assert await adapter.get_user(user.id) == user
        assert user.extra == {"locale": "fr"}

    async def test_authjs_user_field_names_are_accepted(self, adapter: Adapter) -> None:
        verified = _later()

        user = await adapter.create_user({"email": "e@example.com", "emailVerified": verified})

        assert user.email_verified == verified and user.extra == {}

    @pytest.mark.parametrize("verified", _NOT_DATETIMES)
    async def test_email_verified_must_be_a_datetime(
        self, adapter: Adapter, verified: object
    ) -> None:
        user = await _make_user(adapter)

        with self.refused("a user's email_verified must be a datetime"):
            await adapter.create_user({"email": "e@example.com", "emailVerified": verified})
        with self.refused("a user's email_verified must be a datetime"):
            await adapter.update_user({"id": user.id, "email_verified": verified})
        assert await adapter.get_user_by_email("e@example.com") is None
        assert await adapter.get_user(user.id) == user, "nothing changed"

    async def test_returned_datetimes_are_aware_utc_to_the_millisecond(
        self,
        adapter: Adapter,
    ) -> None:
        paris = timezone(timedelta(hours=2))
        verified = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
        created = await adapter.create_user({"email": "d@example.com", "email_verified": verified})
        naive = await adapter.create_user(
            {"email": "n@example.com", "email_verified": datetime(2024, 5, 1, 10, 30, 15)}
        )
        read = await adapter.get_user(created.id)

        assert read is not None and read.email_verified is not None
        for value in (created.email_verified, read.email_verified):
            assert value is not None
            assert value.utcoffset() == timedelta(0)
            assert value == datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)
        assert naive.email_verified == datetime(2024, 5, 1, 10, 30, 15, tzinfo=UTC)

    async def test_datetimes_inside_extra_fields_come_back_as_they_read_back(
        self,
        adapter: Adapter,
    ) -> None:
        moment = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        kept = datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)

        user = await adapter.create_user(
            {"email": "d@example.com", "logins": (moment,), "prefs": {"since": moment}}
        )

        assert user.extra == {"logins": [kept], "prefs": {"since": kept}}
        assert user.extra["prefs"]["since"].utcoffset() == timedelta(0)
        assert await adapter.get_user(user.id) == user

    async def test_a_field_given_under_both_names_must_agree(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        session = {"session_token": "t", "user_id": user.id, "expires": _later(days=1)}

        with self.refused("a session's session_token is given twice"):
            await adapter.create_session({**session, "sessionToken": "u"})
        assert await adapter.get_session_and_user("t") is None
        assert await adapter.get_session_and_user("u") is None
        same = await adapter.create_session({**session, "sessionToken": "t"})
        assert same.session_token == "t"

    async def test_get_user_and_get_user_by_email(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)

        assert await adapter.get_user(user.id) == user
        assert await adapter.get_user_by_email("ada@example.com") == user
        assert await adapter.get_user(self.unknown_id) is None
        assert await adapter.get_user_by_email("nobody@example.com") is None
        assert await adapter.get_user_by_email("ADA@example.com") is None, "exact match only"

    @pytest.mark.parametrize("bad_id", _MALFORMED_IDS)
    async def test_malformed_ids_are_none(self, adapter: Adapter, bad_id: str) -> None:
        await _make_user(adapter)

        assert await adapter.get_user(bad_id) is None
        assert await adapter.update_user({"id": bad_id, "name": "x"}) is None
        assert await adapter.delete_user(bad_id) is None
        assert await adapter.list_sessions(bad_id) == []
        assert await adapter.delete_sessions(bad_id) == 0

    async def test_values_that_are_not_strings_match_nothing(self, adapter: Adapter) -> None:
        # A query operator in place of a string must not match every stored record.
        user = await _make_user(adapter)
        await _make_session(adapter, user)
        await adapter.link_account(_account_data(user))
        weird: Any = {"$ne": ""}

        assert await adapter.get_user(weird) is None
        assert await adapter.get_user_by_email(weird) is None
        assert await adapter.get_session_and_user(weird) is None
        assert await adapter.get_user_by_account(provider=weird, provider_account_id=weird) is None
        assert await adapter.get_account(provider=weird, provider_account_id=weird) is None
        assert await adapter.unlink_account(provider=weird, provider_account_id=weird) is None
        assert await adapter.delete_session(weird) is None
        assert await adapter.use_verification_token(identifier=weird, token=weird) is None
        assert await adapter.tokens_revoked_before(weird) is None

    async def test_update_user_sets_only_given_fields(self, adapter: Adapter) -> None:
        user = await _make_user(adapter, image="https://example.com/a.png")
        verified = _later()

        updated = await adapter.update_user(
            {"id": user.id, "name": "Ada L.", "email_verified": verified, "plan": "pro"}
        )

        assert updated == User(
            id=user.id,
            name="Ada L.",
            email="ada@example.com",
            image="https://example.com/a.png",
            email_verified=verified,
            extra={"plan": "pro"},
        )
        assert await adapter.get_user(user.id) == updated
        assert await adapter.update_user({"id": user.id}) == updated
        assert await adapter.update_user({"id": self.unknown_id, "name": "x"}) is None

    async def test_update_user_to_a_taken_email_raises(self, adapter: Adapter) -> None:
        first = await _make_user(adapter, "one@example.com")
        second = await _make_user(adapter, "two@example.com")

        with self.taken(_TAKEN_EMAIL):
            await adapter.update_user({"id": second.id, "email": "one@example.com"})
        assert await adapter.get_user(second.id) == second, "nothing changed"
        assert await adapter.update_user({"id": first.id, "email": "one@example.com"}) == first

    async def test_changing_an_email_frees_the_old_one(self, adapter: Adapter) -> None:
        user = await _make_user(adapter, "old@example.com")

        moved = await adapter.update_user({"id": user.id, "email": "new@example.com"})

        assert await adapter.get_user_by_email("new@example.com") == moved
        assert await adapter.get_user_by_email("old@example.com") is None
        other = await _make_user(adapter, "old@example.com")
        assert await adapter.get_user_by_email("old@example.com") == other
        if self.users_need_an_email:
            with self.refused(_EMAIL_KEPT):
                await adapter.update_user({"id": user.id, "email": None})
            assert await adapter.get_user_by_email("new@example.com") == moved, "unchanged"
            return
        await adapter.update_user({"id": user.id, "email": None})
        assert await adapter.get_user_by_email("new@example.com") is None

    async def test_create_user_with_a_taken_email_raises(self, adapter: Adapter) -> None:
        await _make_user(adapter)

        with self.taken(_TAKEN_EMAIL):
            await _make_user(adapter)

    async def test_many_users_may_have_no_email(self, adapter: Adapter) -> None:
        if self.users_need_an_email:
            for user in ({"name": "one"}, {"name": "two", "email": None}):
                with self.refused(_EMAIL_NEEDED):
                    await adapter.create_user(user)
            return
        one = await adapter.create_user({"name": "one"})
        two = await adapter.create_user({"name": "two", "email": None})

        assert one.id != two.id
        assert await adapter.get_user(one.id) == one
        assert await adapter.get_user(two.id) == two

    async def test_concurrent_create_user_with_one_email_makes_one_user(
        self,
        adapter: Adapter,
    ) -> None:
        # The adapter is fresh: an index it makes on first use must not let a twin through.
        results = await asyncio.gather(
            *(_make_user(adapter, "race@example.com", name=f"n{i}") for i in range(20)),
            return_exceptions=True,
        )

        created = [result for result in results if isinstance(result, User)]
        refused = [result for result in results if isinstance(result, DuplicateRecordError)]
        assert len(created) == 1
        assert len(refused) == 19
        assert await adapter.get_user_by_email("race@example.com") == created[0]

    async def test_delete_user_removes_their_sessions_and_accounts(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        other = await _make_user(adapter, "other@example.com")
        await _make_session(adapter, user, "mine")
        await _make_session(adapter, other, "theirs")
        await adapter.link_account(_account_data(user, "gh-mine"))
        await adapter.link_account(_account_data(other, "gh-theirs"))

        deleted = await adapter.delete_user(user.id)

        assert deleted == user
        assert await adapter.get_user(user.id) is None
        assert await adapter.get_user_by_email("ada@example.com") is None
        assert await adapter.get_session_and_user("mine") is None
        assert await adapter.get_account(provider="github", provider_account_id="gh-mine") is None
        assert await adapter.list_sessions(user.id) == []
        assert await adapter.get_session_and_user("theirs") is not None
        assert await adapter.get_account(provider="github", provider_account_id="gh-theirs")
        assert await adapter.delete_user(user.id) is None
        assert await _make_user(adapter) != user, "the email can be used again"

    # -- accounts --------------------------------------------------------------------------

    async def test_link_account_keeps_every_field(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)

        account = await adapter.link_account(
            _account_data(user, id_token="idt", session_state="st", refresh_token_expires_in=3600)
        )

        assert account == Account(
            id=account.id,
            user_id=user.id,
            type="oauth",
            provider="github",
            provider_account_id="gh-1",
            access_token="at-1",
            refresh_token="rt-1",
            expires_at=1_900_000_000,
            token_type="bearer",
            scope="read:user",
            id_token="idt",
            session_state="st",
            extra={"refresh_token_expires_in": 3600},
        )
        assert account.id is not None and self.is_an_id(account.id)
        assert await adapter.get_account(provider="github", provider_account_id="gh-1") == account

    async def test_link_account_accepts_the_record_type_and_authjs_names(
        self,
        adapter: Adapter,
    ) -> None:
        user = await _make_user(adapter)
        record = Account(user_id=user.id, type="oidc", provider="okta", provider_account_id="x")

        account = await adapter.link_account(record)
        camel = await adapter.link_account(
            {"userId": user.id, "type": "oauth", "provider": "gitlab", "providerAccountId": "y"}
        )

        assert account.id is not None
        assert await adapter.get_account(provider="okta", provider_account_id="x") == account
        assert (camel.user_id, camel.provider_account_id, camel.extra) == (user.id, "y", {})

    async def test_linking_the_same_provider_account_twice_raises(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        other = await _make_user(adapter, "other@example.com")
        await adapter.link_account(_account_data(user))

        with self.taken(_TAKEN_ACCOUNT):
            await adapter.link_account(_account_data(user))
        with self.taken(_TAKEN_ACCOUNT):
            await adapter.link_account(_account_data(other))
        assert (
            await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") == user
        )

    async def test_link_account_needs_its_key_fields(self, adapter: Adapter) -> None:
        with self.refused("an account needs provider_account_id"):
            await adapter.link_account(
                {"user_id": self.unknown_id, "type": "oauth", "provider": "x"}
            )
        with self.refused("an account needs type"):
            await adapter.link_account({**_account_data(User(id=self.unknown_id)), "type": None})

    @pytest.mark.parametrize("value", [7, ["gh-1"], b"gh-1"])
    @pytest.mark.parametrize("key", ["provider", "provider_account_id", "providerAccountId"])
    async def test_link_account_needs_key_fields_that_are_strings(
        self, adapter: Adapter, key: str, value: object
    ) -> None:
        user = await _make_user(adapter)
        name = "provider" if key == "provider" else "provider_account_id"
        account = {k: v for k, v in _account_data(user).items() if k != name}

        with self.refused(f"an account's {name} must be a string"):
            await adapter.link_account({**account, key: value})

    async def test_get_user_by_account(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        await adapter.link_account(_account_data(user))

        by_account = adapter.get_user_by_account
        assert await by_account(provider="github", provider_account_id="gh-1") == user
        assert await by_account(provider="github", provider_account_id="gh-2") is None
        assert await by_account(provider="gitlab", provider_account_id="gh-1") is None

    async def test_an_account_of_a_user_never_stored_has_no_user(self, adapter: Adapter) -> None:
        await adapter.link_account(_account_data(User(id=self.unknown_id)))

        assert await adapter.get_account(provider="github", provider_account_id="gh-1") is not None
        assert (
            await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") is None
        )

    async def test_get_and_unlink_account(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        linked = await adapter.link_account(_account_data(user))
        key = {"provider": "github", "provider_account_id": "gh-1"}

        assert await adapter.get_account(**key) == linked
        assert await adapter.unlink_account(**key) == linked
        assert await adapter.get_account(**key) is None
        assert await adapter.unlink_account(**key) is None
        assert await adapter.link_account(_account_data(user)) != linked, "it can be linked again"

    async def test_update_account_changes_stored_tokens(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        linked = await adapter.link_account(_account_data(user))

        updated = await adapter.update_account(
            provider="github",
            provider_account_id="gh-1",
            data={"access_token": "at-2", "refresh_token": "rt-2", "expires_at": 1_900_003_600.0},
        )

        assert updated is not None
        assert (updated.access_token, updated.refresh_token, updated.expires_at) == (
            "at-2",
            "rt-2",
            1_900_003_600,
        )
        assert isinstance(updated.expires_at, int)
        assert updated.scope == "read:user" and updated.user_id == user.id
        assert updated.id == linked.id
        assert await adapter.get_account(provider="github", provider_account_id="gh-1") == updated
        missing = await adapter.update_account(
            provider="github", provider_account_id="gh-9", data={"access_token": "x"}
        )
        assert missing is None
        unchanged = await adapter.update_account(
            provider="github", provider_account_id="gh-1", data={}
        )
        assert unchanged == updated

    @pytest.mark.parametrize(
        "key", ["user_id", "userId", "provider", "provider_account_id", "providerAccountId", "id"]
    )
    async def test_update_account_cannot_move_the_account(self, adapter: Adapter, key: str) -> None:
        user = await _make_user(adapter)
        linked = await adapter.link_account(_account_data(user))

        with self.refused(key):
            await adapter.update_account(
                provider="github", provider_account_id="gh-1", data={key: self.unknown_id}
            )
        assert await adapter.get_account(provider="github", provider_account_id="gh-1") == linked

    async def test_update_account_cannot_unset_the_type(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        linked = await adapter.link_account(_account_data(user))

        with self.refused("an account's type cannot be None"):
            await adapter.update_account(
                provider="github", provider_account_id="gh-1", data={"type": None}
            )
        assert await adapter.get_account(provider="github", provider_account_id="gh-1") == linked

    # -- sessions --------------------------------------------------------------------------

    async def test_create_session_keeps_every_field(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        expires = _later(days=30)
        created_at = _later(seconds=-1)

        session = await adapter.create_session(
            {
                "session_token": "tok-1",
                "user_id": user.id,
                "expires": expires,
                "created_at": created_at,
                "user_agent": "Firefox",
            }
        )

        assert session == SessionRecord(
            id=session.id,
            session_token="tok-1",
            user_id=user.id,
            expires=expires,
            created_at=created_at,
            last_seen_at=created_at,
            user_agent="Firefox",
        )
        assert session.id is not None and self.is_an_id(session.id)

    async def test_create_session_defaults_created_at_to_now(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        before = datetime.now(UTC) - timedelta(milliseconds=1)

        session = await _make_session(adapter, user)

        assert session.created_at is not None
        assert before <= session.created_at <= datetime.now(UTC)
        assert session.last_seen_at == session.created_at

    async def test_create_session_with_a_taken_token_raises(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        other = await _make_user(adapter, "other@example.com")
        first = await _make_session(adapter, user, "same")

        with self.taken(_TAKEN_SESSION_TOKEN):
            await _make_session(adapter, user, "same")
        with self.taken(_TAKEN_SESSION_TOKEN):
            await _make_session(adapter, other, "same")
        assert await adapter.get_session_and_user("same") == (first, user)

    async def test_create_session_needs_an_expiry(self, adapter: Adapter) -> None:
        with self.refused("a session needs expires"):
            await adapter.create_session({"session_token": "t", "user_id": self.unknown_id})
        assert await adapter.list_sessions(self.unknown_id) == []

    @pytest.mark.parametrize(
        "key", ["session_token", "sessionToken", "user_id", "userId", "expires"]
    )
    async def test_create_session_refuses_none_for_what_a_session_needs(
        self, adapter: Adapter, key: str
    ) -> None:
        user = await _make_user(adapter)
        name = {"sessionToken": "session_token", "userId": "user_id"}.get(key, key)
        session = {"session_token": "t", "user_id": user.id, "expires": _later(days=1)}
        del session[name]

        with self.refused(f"^a session needs {name}$"):
            await adapter.create_session({**session, key: None})
        assert await adapter.list_sessions(user.id) == []

    @pytest.mark.parametrize("value", _NOT_DATETIMES)
    @pytest.mark.parametrize("key", ["expires", "created_at", "last_seen_at", "lastSeenAt"])
    async def test_create_session_needs_datetimes(
        self, adapter: Adapter, key: str, value: object
    ) -> None:
        user = await _make_user(adapter)
        name = "last_seen_at" if key == "lastSeenAt" else key
        session = {"session_token": "t", "user_id": user.id, "expires": _later(days=1)}

        with self.refused(f"^a session's {name} must be a datetime$"):
            await adapter.create_session({**session, key: value})
        assert await adapter.list_sessions(user.id) == []

    @pytest.mark.parametrize("token", [7, b"t", ["t"]])
    async def test_create_session_needs_a_string_token(
        self, adapter: Adapter, token: object
    ) -> None:
        user = await _make_user(adapter)

        with self.refused(r"^a session's session_token must be a string$"):
            await adapter.create_session(
                {"session_token": token, "user_id": user.id, "expires": _later(days=1)}
            )
        assert await adapter.list_sessions(user.id) == []

    async def test_authjs_session_field_names_are_accepted(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        expires = _later(days=1)

        session = await adapter.create_session(
            {"sessionToken": "camel", "userId": user.id, "expires": expires, "userAgent": "UA"}
        )

        assert (session.session_token, session.user_id, session.expires) == (
            "camel",
            user.id,
            expires,
        )
        assert session.user_agent == "UA" and session.extra == {}
        updated = await adapter.update_session({"sessionToken": "camel", "lastSeenAt": expires})
        assert updated is not None and updated.last_seen_at == expires

    async def test_get_session_and_user(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        session = await _make_session(adapter, user, "tok", device="laptop")

        assert await adapter.get_session_and_user("tok") == (session, user)
        assert session.extra == {"device": "laptop"}
        assert await adapter.get_session_and_user("other") is None

    async def test_a_session_of_a_user_never_stored_has_no_user(self, adapter: Adapter) -> None:
        await adapter.create_session(
            {"session_token": "t", "user_id": self.unknown_id, "expires": _later()}
        )

        assert await adapter.get_session_and_user("t") is None

    async def test_update_session(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        session = await _make_session(adapter, user, "tok")
        expires, seen = _later(days=31), _later(seconds=5)

        updated = await adapter.update_session(
            {"session_token": "tok", "expires": expires, "last_seen_at": seen, "data": {"a": 1}}
        )

        assert updated is not None
        assert (updated.expires, updated.last_seen_at) == (expires, seen)
        assert updated.created_at == session.created_at and updated.id == session.id
        assert updated.extra == {"data": {"a": 1}}
        found = await adapter.get_session_and_user("tok")
        assert found is not None and found[0] == updated
        assert await adapter.update_session({"session_token": "nope", "expires": expires}) is None
        assert await adapter.update_session({"expires": expires}) is None

    @pytest.mark.parametrize("key", ["expires", "user_id", "userId"])
    async def test_update_session_cannot_unset_the_user_or_the_expiry(
        self, adapter: Adapter, key: str
    ) -> None:
        user = await _make_user(adapter)
        session = await _make_session(adapter, user, "tok")
        name = "user_id" if key == "userId" else key

        with self.refused(f"^a session's {name} cannot be None$"):
            await adapter.update_session({"session_token": "tok", key: None})
        assert await adapter.get_session_and_user("tok") == (session, user), "unchanged"

    @pytest.mark.parametrize("value", _NOT_DATETIMES)
    @pytest.mark.parametrize("key", ["expires", "last_seen_at", "lastSeenAt"])
    async def test_update_session_needs_datetimes(
        self, adapter: Adapter, key: str, value: object
    ) -> None:
        user = await _make_user(adapter)
        session = await _make_session(adapter, user, "tok")
        name = "last_seen_at" if key == "lastSeenAt" else key

        with self.refused(f"^a session's {name} must be a datetime$"):
            await adapter.update_session({"session_token": "tok", key: value})
        assert await adapter.get_session_and_user("tok") == (session, user), "unchanged"

    async def test_delete_session(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        session = await _make_session(adapter, user, "tok")

        assert await adapter.delete_session("tok") == session
        assert await adapter.get_session_and_user("tok") is None
        assert await adapter.delete_session("tok") is None

    async def test_list_sessions_newest_first(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        other = await _make_user(adapter, "other@example.com")
        start = _later(hours=-3)
        for hours, token in ((1, "middle"), (2, "newest"), (0, "oldest")):
            await _make_session(adapter, user, token, created_at=start + timedelta(hours=hours))
        await _make_session(adapter, other, "not-mine")

        listed = await adapter.list_sessions(user.id)

        assert [session.session_token for session in listed] == ["newest", "middle", "oldest"]
        assert await adapter.list_sessions(self.unknown_id) == []

    async def test_sessions_created_at_one_moment_list_the_last_created_first(
        self,
        adapter: Adapter,
    ) -> None:
        user = await _make_user(adapter)
        moment = _later()
        for token in ("first", "second", "third"):
            await _make_session(adapter, user, token, created_at=moment)

        listed = await adapter.list_sessions(user.id)

        assert [session.session_token for session in listed] == ["third", "second", "first"]

    async def test_delete_sessions_except_one(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        other = await _make_user(adapter, "other@example.com")
        for token in ("a", "b", "keep"):
            await _make_session(adapter, user, token)
        await _make_session(adapter, other, "theirs")

        assert await adapter.delete_sessions(user.id, except_token="keep") == 2
        assert [s.session_token for s in await adapter.list_sessions(user.id)] == ["keep"]
        assert await adapter.delete_sessions(user.id) == 1
        assert await adapter.list_sessions(user.id) == []
        assert await adapter.get_session_and_user("theirs") is not None

    # -- verification tokens ---------------------------------------------------------------

    async def test_verification_token_is_single_use(self, adapter: Adapter) -> None:
        expires = _later(hours=24)
        created = await adapter.create_verification_token(
            VerificationToken(identifier="ada@example.com", token="hashed", expires=expires)
        )
        use = adapter.use_verification_token

        assert created == VerificationToken("ada@example.com", "hashed", expires)
        assert await use(identifier="ada@example.com", token="wrong") is None
        assert await use(identifier="bob@example.com", token="hashed") is None
        assert await use(identifier="ada@example.com", token="hashed") == created
        assert await use(identifier="ada@example.com", token="hashed") is None

    async def test_a_duplicate_verification_token_raises(self, adapter: Adapter) -> None:
        token = {"identifier": "a@example.com", "token": "t", "expires": _later(hours=1)}
        await adapter.create_verification_token(token)

        with self.taken(_TAKEN_VERIFICATION_TOKEN):
            await adapter.create_verification_token(token)
        other = await adapter.create_verification_token({**token, "identifier": "b@example.com"})
        assert other.identifier == "b@example.com"

    async def test_verification_token_extra_fields_are_dropped(self, adapter: Adapter) -> None:
        expires = _later(hours=1)

        created = await adapter.create_verification_token(
            {"identifier": "a@example.com", "token": "t", "expires": expires, "note": "x"}
        )

        assert created == VerificationToken("a@example.com", "t", expires)
        with self.refused("a verification token needs expires"):
            await adapter.create_verification_token({"identifier": "a@example.com", "token": "u"})

    @pytest.mark.parametrize(
        ("more", "message"),
        [
            ({"identifier": 7}, "a verification token's identifier must be a string"),
            ({"token": ["t"]}, "a verification token's token must be a string"),
            *(
                ({"expires": value}, "a verification token's expires must be a datetime")
                for value in _NOT_DATETIMES
            ),
        ],
    )
    async def test_verification_token_fields_must_have_their_types(
        self, adapter: Adapter, more: dict[str, Any], message: str
    ) -> None:
        token = {"identifier": "a@example.com", "token": "t", "expires": _later(hours=1), **more}

        with self.refused(f"^{message}$"):
            await adapter.create_verification_token(token)
        assert await adapter.use_verification_token(identifier="a@example.com", token="t") is None

    async def test_concurrent_uses_of_one_token_succeed_once(self, adapter: Adapter) -> None:
        await adapter.create_verification_token(
            {"identifier": "a@example.com", "token": "t", "expires": _later(hours=1)}
        )

        results = await asyncio.gather(
            *(
                adapter.use_verification_token(identifier="a@example.com", token="t")
                for _ in range(10)
            )
        )

        assert sum(result is not None for result in results) == 1

    async def test_delete_verification_tokens_drops_one_identifiers_tokens(
        self,
        adapter: Adapter,
    ) -> None:
        if not isinstance(adapter, TokenSweeper):
            pytest.skip(
                f"{type(adapter).__name__} is no TokenSweeper "
                "(asgi_session.backends.TokenSweeper), which password accounts ask for"
            )
        for identifier, token in [("reset:a", "1"), ("reset:a", "2"), ("reset:b", "3")]:
            await adapter.create_verification_token(
                {"identifier": identifier, "token": token, "expires": _later(hours=1)}
            )
        use = adapter.use_verification_token

        assert await adapter.delete_verification_tokens("reset:a") == 2
        assert await adapter.delete_verification_tokens("reset:a") == 0
        assert await adapter.delete_verification_tokens(7) == 0  # type: ignore[arg-type]
        assert await use(identifier="reset:a", token="1") is None
        assert await use(identifier="reset:a", token="2") is None
        assert await use(identifier="reset:b", token="3") is not None

    # -- JWT revocation --------------------------------------------------------------------

    async def test_revocation_cutoff_only_moves_forward(self, adapter: Adapter) -> None:
        user = await _make_user(adapter)
        first, second = _later(seconds=-60), _later()

        assert await adapter.tokens_revoked_before(user.id) is None
        await adapter.revoke_tokens_issued_before(user.id, second)
        await adapter.revoke_tokens_issued_before(user.id, first)

        assert await adapter.tokens_revoked_before(user.id) == second
        assert await adapter.tokens_revoked_before(self.unknown_id) is None
        third = _later(seconds=60)
        await adapter.revoke_tokens_issued_before(user.id, third)
        assert await adapter.tokens_revoked_before(user.id) == third

    async def test_revocation_works_for_ids_that_are_not_hex(self, adapter: Adapter) -> None:
        when = _later()

        await adapter.revoke_tokens_issued_before("credentials-user-7", when)

        assert await adapter.tokens_revoked_before("credentials-user-7") == when
        with self.refused("user_id"):
            await adapter.revoke_tokens_issued_before("", when)

    @pytest.mark.parametrize("when", _NOT_DATETIMES)
    async def test_a_revocation_cutoff_must_be_a_datetime(
        self, adapter: Adapter, when: Any
    ) -> None:
        with self.refused(r"^when must be a datetime$"):
            await adapter.revoke_tokens_issued_before("u", when)
        assert await adapter.tokens_revoked_before("u") is None

    # -- authenticators (passkeys) ---------------------------------------------------------

    async def test_create_authenticator_keeps_every_field(self, passkeys: _PasskeyAdapter) -> None:
        user = await _make_user(passkeys)
        created_at = _later(minutes=-5)

        authenticator = await _make_passkey(
            passkeys, user, counter=3, name="Laptop", created_at=created_at, aaguid="adce0002"
        )

        assert authenticator == Authenticator(
            credential_id=_CREDENTIAL_ID,
            user_id=user.id,
            provider_account_id=_CREDENTIAL_ID,
            credential_public_key=_PUBLIC_KEY,
            counter=3,
            credential_device_type="multiDevice",
            credential_backed_up=True,
            transports="internal,hybrid",
            name="Laptop",
            created_at=created_at,
            last_used_at=None,
            extra={"aaguid": "adce0002"},
        )
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == authenticator
        assert await passkeys.get_authenticator(_OTHER_CREDENTIAL_ID) is None
        assert await passkeys.get_authenticator(_CREDENTIAL_ID.lower()) is None, "exact match only"

    async def test_create_authenticator_defaults_created_at_to_now(
        self, passkeys: _PasskeyAdapter
    ) -> None:
        user = await _make_user(passkeys)
        before = datetime.now(UTC) - timedelta(milliseconds=1)

        authenticator = await _make_passkey(passkeys, user, transports=None)

        assert authenticator.created_at is not None
        assert before <= authenticator.created_at <= datetime.now(UTC)
        assert (authenticator.transports, authenticator.name, authenticator.last_used_at) == (
            None,
            None,
            None,
        )
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == authenticator

    async def test_create_authenticator_accepts_the_record_type_and_authjs_names(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        user = await _make_user(passkeys)
        record = Authenticator(
            credential_id=_CREDENTIAL_ID,
            user_id=user.id,
            provider_account_id=_CREDENTIAL_ID,
            credential_public_key=_PUBLIC_KEY,
            counter=0,
            credential_device_type="singleDevice",
            credential_backed_up=False,
            extra={"aaguid": "x"},
        )

        from_record = await passkeys.create_authenticator(record)
        camel = await passkeys.create_authenticator(
            {
                "credentialID": _OTHER_CREDENTIAL_ID,
                "userId": user.id,
                "providerAccountId": _OTHER_CREDENTIAL_ID,
                "credentialPublicKey": _PUBLIC_KEY,
                "counter": 9,
                "credentialDeviceType": "multiDevice",
                "credentialBackedUp": True,
                "transports": "usb",
            }
        )

        assert from_record.extra == {"aaguid": "x"} and from_record.created_at is not None
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == from_record
        assert (camel.credential_id, camel.user_id, camel.counter) == (
            _OTHER_CREDENTIAL_ID,
            user.id,
            9,
        )
        assert (camel.credential_public_key, camel.credential_backed_up) == (_PUBLIC_KEY, True)
        assert camel.extra == {}
        assert await passkeys.get_authenticator(_OTHER_CREDENTIAL_ID) == camel

    async def test_registering_a_credential_twice_raises(self, passkeys: _PasskeyAdapter) -> None:
        user = await _make_user(passkeys)
        other = await _make_user(passkeys, "other@example.com")
        first = await _make_passkey(passkeys, user)

        with self.taken(_TAKEN_CREDENTIAL):
            await _make_passkey(passkeys, user, counter=5)
        with self.taken(_TAKEN_CREDENTIAL):
            await _make_passkey(passkeys, other)
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == first, "nothing changed"
        assert await passkeys.list_authenticators_by_user_id(other.id) == []

    async def test_concurrent_registrations_of_one_credential_store_one(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        # The adapter is fresh: an index it makes on first use must not let a twin through.
        user = await _make_user(passkeys)

        results = await asyncio.gather(
            *(_make_passkey(passkeys, user, name=f"n{i}") for i in range(10)),
            return_exceptions=True,
        )

        created = [result for result in results if isinstance(result, Authenticator)]
        refused = [result for result in results if isinstance(result, DuplicateRecordError)]
        assert (len(created), len(refused)) == (1, 9)
        assert await passkeys.list_authenticators_by_user_id(user.id) == created

    @pytest.mark.parametrize(
        "key",
        [*_REQUIRED_AUTHENTICATOR_FIELDS, "credentialID", "userId", "credentialBackedUp"],
    )
    async def test_create_authenticator_refuses_none_for_what_it_needs(
        self, passkeys: _PasskeyAdapter, key: str
    ) -> None:
        user = await _make_user(passkeys)
        aliases = {stored: python for python, stored in _AUTHJS_AUTHENTICATOR_NAMES.items()}
        name = aliases.get(key, key)
        data = _passkey_data(user)
        del data[name]

        with self.refused(f"^an authenticator needs {name}$"):
            await passkeys.create_authenticator(data)
        with self.refused(f"^an authenticator needs {name}$"):
            await passkeys.create_authenticator({**data, key: None})
        assert await passkeys.list_authenticators_by_user_id(user.id) == []

    @pytest.mark.parametrize("counter", [-1, 1.0, 2.5, "1", True, 2**32])
    async def test_an_authenticator_counter_is_a_32_bit_whole_number(
        self, passkeys: _PasskeyAdapter, counter: object
    ) -> None:
        user = await _make_user(passkeys)

        with self.refused(
            r"^an authenticator's counter must be a whole number from 0 to 4294967295$",
        ):
            await _make_passkey(passkeys, user, counter=counter)
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) is None
        largest = await _make_passkey(passkeys, user, counter=2**32 - 1)
        assert largest.counter == 2**32 - 1

    @pytest.mark.parametrize("backed_up", [1, 0, "true", "false"])
    async def test_credential_backed_up_is_a_bool(
        self, passkeys: _PasskeyAdapter, backed_up: object
    ) -> None:
        user = await _make_user(passkeys)

        with self.refused(r"^an authenticator's credential_backed_up must be True or False$"):
            await _make_passkey(passkeys, user, credential_backed_up=backed_up)
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) is None

    @pytest.mark.parametrize(
        ("more", "message"),
        [
            ({"credential_id": 7}, "an authenticator's credential_id must be a string"),
            (
                {"credential_public_key": b"key"},
                "an authenticator's credential_public_key must be a string",
            ),
            (
                {"credential_device_type": 1},
                "an authenticator's credential_device_type must be a string",
            ),
            ({"transports": ["internal"]}, "an authenticator's transports must be a string"),
            ({"name": 7}, "an authenticator's name must be a string"),
            *(
                ({"created_at": value}, "an authenticator's created_at must be a datetime")
                for value in _NOT_DATETIMES
            ),
            ({"lastUsedAt": "yesterday"}, "an authenticator's last_used_at must be a datetime"),
        ],
    )
    async def test_authenticator_fields_must_have_their_types(
        self, passkeys: _PasskeyAdapter, more: dict[str, Any], message: str
    ) -> None:
        user = await _make_user(passkeys)

        with self.refused(f"^{message}$"):
            await passkeys.create_authenticator({**_passkey_data(user), **more})
        assert await passkeys.list_authenticators_by_user_id(user.id) == []

    async def test_authenticator_records_come_back_as_they_read_back(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        user = await _make_user(passkeys)
        paris = timezone(timedelta(hours=2))
        moment = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
        kept = datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)

        created = await _make_passkey(
            passkeys, user, created_at=moment, seen={"first": (moment,)}, flags=["uv"]
        )
        used = await passkeys.update_authenticator_counter(_CREDENTIAL_ID, 1, used_at=moment)

        assert created.created_at == kept and created.created_at.utcoffset() == timedelta(0)
        assert created.extra == {"seen": {"first": [kept]}, "flags": ["uv"]}
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == used
        assert used is not None and used.last_used_at == kept
        assert await passkeys.list_authenticators_by_user_id(user.id) == [used]

    async def test_list_authenticators_oldest_first(self, passkeys: _PasskeyAdapter) -> None:
        user = await _make_user(passkeys)
        other = await _make_user(passkeys, "other@example.com")
        start = _later(hours=-3)
        for hours, name in ((1, "middle"), (2, "newest"), (0, "oldest")):
            await _make_passkey(
                passkeys, user, f"{name}==", name=name, created_at=start + timedelta(hours=hours)
            )
        moment = _later()
        for name in ("first", "second"):
            await _make_passkey(passkeys, user, f"{name}==", name=name, created_at=moment)
        await _make_passkey(passkeys, other, "theirs==")

        listed = await passkeys.list_authenticators_by_user_id(user.id)

        assert [a.name for a in listed] == ["oldest", "middle", "newest", "first", "second"]
        assert [
            a.credential_id for a in await passkeys.list_authenticators_by_user_id(other.id)
        ] == ["theirs=="]
        assert await passkeys.list_authenticators_by_user_id(self.unknown_id) == []

    @pytest.mark.parametrize("bad_id", _MALFORMED_IDS)
    async def test_malformed_user_ids_list_no_authenticators(
        self, passkeys: _PasskeyAdapter, bad_id: str
    ) -> None:
        await _make_passkey(passkeys, await _make_user(passkeys))

        assert await passkeys.list_authenticators_by_user_id(bad_id) == []

    @pytest.mark.parametrize(
        ("stored", "sent", "accepted"),
        [
            (5, 6, True),
            (5, 1_000, True),
            (0, 1, True),
            (0, 0, True),  # authenticators that keep no counter always send 0
            (5, 5, False),  # a replayed assertion
            (5, 4, False),  # a cloned authenticator
            (5, 0, False),
            (2**32 - 2, 2**32 - 1, True),
        ],
    )
    async def test_update_authenticator_counter_only_goes_up(
        self, passkeys: _PasskeyAdapter, stored: int, sent: int, accepted: bool
    ) -> None:
        user = await _make_user(passkeys)
        registered = await _make_passkey(passkeys, user, counter=stored)

        updated = await passkeys.update_authenticator_counter(_CREDENTIAL_ID, sent)

        if accepted:
            assert updated is not None
            assert updated == dataclasses.replace(registered, counter=sent)
            assert await passkeys.get_authenticator(_CREDENTIAL_ID) == updated
        else:
            assert updated is None
            assert await passkeys.get_authenticator(_CREDENTIAL_ID) == registered, "unchanged"

    async def test_update_authenticator_counter_of_an_unknown_credential_is_none(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        await _make_passkey(passkeys, await _make_user(passkeys))

        assert await passkeys.update_authenticator_counter(_OTHER_CREDENTIAL_ID, 1) is None
        assert await passkeys.get_authenticator(_OTHER_CREDENTIAL_ID) is None

    async def test_update_authenticator_counter_records_when_it_was_used(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        user = await _make_user(passkeys)
        await _make_passkey(passkeys, user)
        first, second = _later(minutes=-1), _later()

        used = await passkeys.update_authenticator_counter(_CREDENTIAL_ID, 0, used_at=first)
        refused = await passkeys.update_authenticator_counter(_CREDENTIAL_ID, 0, used_at=second)
        naive = await passkeys.update_authenticator_counter(
            _CREDENTIAL_ID, 0, used_at=second.replace(tzinfo=None)
        )
        unrecorded = await passkeys.update_authenticator_counter(_CREDENTIAL_ID, 0)

        assert used is not None and used.last_used_at == first
        assert refused is not None and refused.last_used_at == second, "both zero: accepted"
        assert naive is not None and naive.last_used_at == second, "naive is UTC"
        assert unrecorded is not None and unrecorded.last_used_at == second, "left as it was"
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == unrecorded

    async def test_a_refused_counter_records_no_use(self, passkeys: _PasskeyAdapter) -> None:
        user = await _make_user(passkeys)
        await _make_passkey(passkeys, user, counter=5)
        used = await passkeys.update_authenticator_counter(
            _CREDENTIAL_ID, 6, used_at=_later(minutes=-1)
        )

        assert (
            await passkeys.update_authenticator_counter(_CREDENTIAL_ID, 6, used_at=_later()) is None
        )
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == used

    @pytest.mark.parametrize(
        ("counter", "used_at", "message"),
        [
            (-1, None, "^counter must be a whole number from 0 to 4294967295$"),
            (2**32, None, "^counter must be a whole number from 0 to 4294967295$"),
            (1.0, None, "^counter must be a whole number from 0 to 4294967295$"),
            (True, None, "^counter must be a whole number from 0 to 4294967295$"),
            ("7", None, "^counter must be a whole number from 0 to 4294967295$"),
            *((1, value, "^used_at must be a datetime or None$") for value in _NOT_DATETIMES),
        ],
    )
    async def test_update_authenticator_counter_refuses_wrong_types(
        self, passkeys: _PasskeyAdapter, counter: Any, used_at: Any, message: str
    ) -> None:
        registered = await _make_passkey(passkeys, await _make_user(passkeys))

        with self.refused(message):
            await passkeys.update_authenticator_counter(_CREDENTIAL_ID, counter, used_at=used_at)
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == registered

    async def test_concurrent_uses_of_one_counter_let_exactly_one_through(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        user = await _make_user(passkeys)
        await _make_passkey(passkeys, user, counter=3)

        results = await asyncio.gather(
            *(passkeys.update_authenticator_counter(_CREDENTIAL_ID, 4) for _ in range(20))
        )

        through = [result for result in results if result is not None]
        assert len(through) == 1 and through[0].counter == 4
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == through[0]

    async def test_update_authenticator_renames_it(self, passkeys: _PasskeyAdapter) -> None:
        user = await _make_user(passkeys)
        registered = await _make_passkey(passkeys, user, name="Phone")

        renamed = await passkeys.update_authenticator(_CREDENTIAL_ID, {"name": "Work phone"})

        assert renamed == dataclasses.replace(registered, name="Work phone")
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == renamed
        assert await passkeys.update_authenticator(_CREDENTIAL_ID, {}) == renamed
        cleared = await passkeys.update_authenticator(
            _CREDENTIAL_ID, {"name": None, "credentialBackedUp": False, "aaguid": "x"}
        )
        assert cleared == dataclasses.replace(
            registered, name=None, credential_backed_up=False, extra={"aaguid": "x"}
        )
        assert await passkeys.update_authenticator(_OTHER_CREDENTIAL_ID, {"name": "x"}) is None
        assert await passkeys.get_authenticator(_OTHER_CREDENTIAL_ID) is None

    @pytest.mark.parametrize(
        "key",
        [
            "credential_id",
            "credentialID",
            "user_id",
            "userId",
            "provider_account_id",
            "providerAccountId",
            "credential_public_key",
            "credentialPublicKey",
            "counter",
            "id",
            "_id",
        ],
    )
    async def test_update_authenticator_cannot_change_the_credential_or_its_counter(
        self, passkeys: _PasskeyAdapter, key: str
    ) -> None:
        registered = await _make_passkey(passkeys, await _make_user(passkeys))

        with self.refused(f"^update_authenticator cannot change {key}; "):
            await passkeys.update_authenticator(_CREDENTIAL_ID, {key: 9, "name": "x"})
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == registered, "unchanged"

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"name": 7}, "^an authenticator's name must be a string$"),
            (
                {"credential_backed_up": None},
                "^an authenticator's credential_backed_up cannot be None$",
            ),
            (
                {"credentialBackedUp": "yes"},
                "^an authenticator's credential_backed_up must be True",
            ),
            (
                {"credential_device_type": None},
                "^an authenticator's credential_device_type cannot be",
            ),
            ({"last_used_at": "today"}, "^an authenticator's last_used_at must be a datetime$"),
        ],
    )
    async def test_update_authenticator_checks_what_it_sets(
        self, passkeys: _PasskeyAdapter, changes: dict[str, Any], message: str
    ) -> None:
        registered = await _make_passkey(passkeys, await _make_user(passkeys))

        with self.refused(message):
            await passkeys.update_authenticator(_CREDENTIAL_ID, changes)
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == registered, "unchanged"

    async def test_delete_authenticator(self, passkeys: _PasskeyAdapter) -> None:
        user = await _make_user(passkeys)
        registered = await _make_passkey(passkeys, user)
        kept = await _make_passkey(passkeys, user, _OTHER_CREDENTIAL_ID)

        assert await passkeys.delete_authenticator(_CREDENTIAL_ID) == registered
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) is None
        assert await passkeys.delete_authenticator(_CREDENTIAL_ID) is None
        assert await passkeys.update_authenticator_counter(_CREDENTIAL_ID, 1) is None
        assert await passkeys.list_authenticators_by_user_id(user.id) == [kept]
        again = await _make_passkey(passkeys, user)
        assert again.credential_id == _CREDENTIAL_ID, "it can be registered again"

    async def test_delete_user_removes_their_authenticators(
        self, passkeys: _PasskeyAdapter
    ) -> None:
        user = await _make_user(passkeys)
        other = await _make_user(passkeys, "other@example.com")
        await _make_passkey(passkeys, user)
        await _make_passkey(passkeys, user, "second==")
        theirs = await _make_passkey(passkeys, other, _OTHER_CREDENTIAL_ID)

        assert await passkeys.delete_user(user.id) == user

        assert await passkeys.get_authenticator(_CREDENTIAL_ID) is None
        assert await passkeys.get_authenticator("second==") is None
        assert await passkeys.list_authenticators_by_user_id(user.id) == []
        assert await passkeys.get_authenticator(_OTHER_CREDENTIAL_ID) == theirs
        assert await _make_passkey(passkeys, other), "the credential id can be used again"

    async def test_credential_ids_that_are_not_strings_match_nothing(
        self,
        passkeys: _PasskeyAdapter,
    ) -> None:
        # A query operator in place of a string must not match every stored authenticator.
        registered = await _make_passkey(passkeys, await _make_user(passkeys))
        weird: Any = {"$ne": ""}

        assert await passkeys.get_authenticator(weird) is None
        assert await passkeys.update_authenticator_counter(weird, 9) is None
        assert await passkeys.update_authenticator(weird, {"name": "x"}) is None
        assert await passkeys.delete_authenticator(weird) is None
        assert await passkeys.list_authenticators_by_user_id(weird) == []
        assert await passkeys.get_authenticator(_CREDENTIAL_ID) == registered
