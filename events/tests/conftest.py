"""Fixtures of the webhook tests: a real receiver on loopback, webhooks allowed to call it, a DNS of the test's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from events.tests.webhook_support import Receiver
from events.webhooks import addresses
from tests.factories import UserFactory


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.close()


@pytest.fixture
def insecure_webhooks(settings: Any) -> None:
    """Webhooks may call http:// and loopback (the test's receiver): set in-process, as the environment
    variable is refused with DEBUG off."""
    settings.WEBHOOKS_ALLOW_INSECURE = True


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the test makes resolve to the addresses it says (others resolve as usual)."""
    names: dict[str, list[str]] = {}
    system = addresses.resolve_host

    def resolve(host: str, port: int) -> list[str]:
        return list(names[host]) if host in names else system(host, port)

    monkeypatch.setattr(addresses, "resolve_host", resolve)
    return names


@pytest.fixture
def owner(db: Any) -> Any:
    return UserFactory()
