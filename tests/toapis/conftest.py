"""Fixtures for the toapis tests: clients with other timeouts or retry policies, pointed at the fake."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fakes.toapis import INSTANT_RETRY, FakeToAPIs
from tests.toapis._helpers import MakeClient
from toapis import ToAPIsClient


@pytest.fixture
def make_client(toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession) -> MakeClient:
    """Build a client on the fake; keyword arguments override the defaults (5 s timeout, instant retries)."""

    def make(**overrides: Any) -> ToAPIsClient:
        options: dict[str, Any] = {
            "api_key": toapis_fake.api_key,
            "base_url": toapis_fake.base_url,
            "timeout": 5.0,
            "retry": INSTANT_RETRY,
        }
        options.update(overrides)
        return ToAPIsClient(toapis_session, **options)

    return make
