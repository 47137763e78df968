"""test_custom_adapter.py: the contract every adapter keeps, run against yours."""

# --8<-- [start:test]
import re

import pytest
from custom_adapter import DictAdapter  # your adapter's module

from asgi_session.testing import AdapterContract


class TestDictAdapter(AdapterContract):
    # Settings: what your adapter's ids look like (uuid4().hex here).
    id_pattern = re.compile(r"[0-9a-f]{32}")
    unknown_id = "0" * 32

    @pytest.fixture
    def adapter(self) -> DictAdapter:
        return DictAdapter()  # for a real store: a database of its own, emptied afterwards


# --8<-- [end:test]
