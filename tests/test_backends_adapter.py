"""The Adapter contract, kept alike by every adapter the package ships.

The contract is :class:`asgi_session.testing.AdapterContract`, the very suite an
adapter of someone else's runs: here it runs over memory, MongoDB (PyMongo and Motor),
SQLite and PostgreSQL (the ``contract_adapter`` fixture in tests/conftest.py), with the
messages checked word for word. What only the package's adapters promise (ids of 24 hex
digits, ids of that shape kept and refused, every optional capability) is tested here
besides.
"""

from __future__ import annotations

import re
import uuid

import pytest

from asgi_session.backends import Adapter, AuthenticatorStore, TokenSweeper
from asgi_session.models import User
from asgi_session.testing import AdapterContract
from tests.support.records import later, make_session, make_user

HEX_ID = re.compile(r"[0-9a-f]{24}")
#: A credential id, in standard base64 as Auth.js spells them.
CREDENTIAL_ID = "AAECAwQFBgcICQoLDA0ODw=="


class TestAdapterContract(AdapterContract):
    """The contract, and what the package's adapters keep besides it."""

    id_pattern = HEX_ID
    exact_messages = True

    @pytest.fixture
    def adapter(self, contract_adapter: Adapter) -> Adapter:
        return contract_adapter

    async def test_every_adapter_here_has_every_optional_capability(self, adapter: Adapter) -> None:
        # The contract skips what an adapter lacks; none of ours may lack anything.
        assert isinstance(adapter, TokenSweeper)
        assert isinstance(adapter, AuthenticatorStore)

    async def test_create_user_keeps_a_24_hex_digit_id_and_replaces_others(
        self, adapter: Adapter
    ) -> None:
        chosen = "65a1b2c3d4e5f60718293a4b"
        kept = await adapter.create_user({"id": chosen, "email": "a@example.com"})
        replaced = await adapter.create_user({"id": "user-1", "email": "b@example.com"})
        from_uuid = await adapter.create_user({"id": str(uuid.uuid4()), "email": "u@example.com"})

        assert kept.id == chosen
        assert replaced.id != "user-1" and HEX_ID.fullmatch(replaced.id)
        assert HEX_ID.fullmatch(from_uuid.id)
        assert await adapter.get_user(chosen.upper()) == kept, "hex digits in either case"

    async def test_a_user_id_in_capitals_names_the_same_user(self, adapter: Adapter) -> None:
        user = await make_user(adapter)
        assert isinstance(adapter, AuthenticatorStore)

        session = await make_session(adapter, User(id=user.id.upper()), "tok")
        authenticator = await adapter.create_authenticator(
            {
                "credentialID": CREDENTIAL_ID,
                "userId": user.id.upper(),
                "providerAccountId": CREDENTIAL_ID,
                "credentialPublicKey": "key",
                "counter": 0,
                "credentialDeviceType": "multiDevice",
                "credentialBackedUp": True,
            }
        )

        assert session.user_id == user.id and authenticator.user_id == user.id
        assert await adapter.get_session_and_user("tok") == (session, user)
        assert await adapter.list_authenticators_by_user_id(user.id) == [authenticator]

    async def test_create_user_with_a_taken_id_raises(self, adapter: Adapter) -> None:
        chosen = "65a1b2c3d4e5f60718293a4b"
        first = await adapter.create_user({"id": chosen, "email": "a@example.com"})

        with self.taken("^a user with this id already exists$"):
            await adapter.create_user({"id": chosen.upper(), "email": "c@example.com"})
        assert await adapter.get_user(chosen) == first, "nothing changed"
        assert await adapter.get_user_by_email("c@example.com") is None

    async def test_records_naming_a_user_need_a_valid_user_id(self, adapter: Adapter) -> None:
        account = {"type": "oauth", "provider": "github", "provider_account_id": "gh-1"}

        with self.refused("^user_id 'not-an-id' is not a valid id$"):
            await adapter.link_account({**account, "user_id": "not-an-id"})
        with self.refused("^user_id 'abc' is not a valid id$"):
            await adapter.create_session(
                {"session_token": "t", "user_id": "abc", "expires": later(days=1)}
            )
        assert await adapter.get_account(provider="github", provider_account_id="gh-1") is None
        assert await adapter.get_session_and_user("t") is None

    async def test_update_session_needs_a_valid_user_id(self, adapter: Adapter) -> None:
        user = await make_user(adapter)
        session = await make_session(adapter, user, "tok")

        with self.refused("not a valid id"):
            await adapter.update_session({"session_token": "tok", "user_id": "abc"})
        assert await adapter.get_session_and_user("tok") == (session, user), "unchanged"

    async def test_create_authenticator_needs_a_valid_user_id(self, adapter: Adapter) -> None:
        assert isinstance(adapter, AuthenticatorStore)

        with self.refused("user_id 'user-1' is not a valid id"):
            await adapter.create_authenticator(
                {
                    "credential_id": CREDENTIAL_ID,
                    "user_id": "user-1",
                    "provider_account_id": CREDENTIAL_ID,
                    "credential_public_key": "key",
                    "counter": 0,
                    "credential_device_type": "multiDevice",
                    "credential_backed_up": True,
                }
            )
        assert await adapter.get_authenticator(CREDENTIAL_ID) is None
