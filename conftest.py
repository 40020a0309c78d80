"""Fixtures shared by every test suite."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
import redis
from django.apps import apps
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.admin_support import logged_in, staff_in, superuser
from tests.factories import UserFactory
from wallets import locks


def _clear_test_redis() -> None:
    """Drop our own keys from the test Redis database (never FLUSHALL the shared server)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in ("lock:wallet:*", "lock-signal:wallet:*", f"{settings.CACHES['default'].get('KEY_PREFIX', '')}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def seed_reference_data() -> None:
    """Put back the currencies and rates of the seed migration (it skips what is there).

    A `transaction=True` test ends with a flush that empties every table,
    migration data included, and with `--reuse-db` the next run would start
    without them too.
    """
    importlib.import_module("wallets.migrations.0002_seed_currencies_and_rates").forwards(apps, None)


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Every database test starts with the currencies and rates of the data migration."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction", False)) or (
        "transactional_db" in request.fixturenames or "live_server" in request.fixturenames
    )
    if transactional:
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return
    from wallets.models import Currency

    if not Currency.objects.filter(pk="USD").exists():
        seed_reference_data()


@pytest.fixture(autouse=True)
def _quick_password_hashing(settings):
    settings.PASSWORD_HASHERS = [
        "tests.hashers.QuickPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture(autouse=True)
def _isolated_redis():
    """Each test starts with no locks or throttle counters left by another."""
    locks.reset_backend()
    _clear_test_redis()
    yield
    locks.reset_backend()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


def error_code(response) -> str:
    """The contract's error code of a response, after checking the error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]["code"]


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def api(user):
    """An API client authenticated as `user`."""
    return client_for(user)


@pytest.fixture
def other_api(other_user):
    return client_for(other_user)


@pytest.fixture
def staff_api(staff_user):
    return client_for(staff_user)


# --- the back office: admin clients of each kind of staff ---------------------------------


@pytest.fixture
def support(db):
    return logged_in(staff_in("Support"))


@pytest.fixture
def finance_user(db):
    return staff_in("Finance")


@pytest.fixture
def finance(finance_user):
    return logged_in(finance_user)


@pytest.fixture
def finance_api(finance_user):
    """An API client of a Finance staff member: the role that may refund."""
    return client_for(finance_user)


@pytest.fixture
def root(db):
    return logged_in(superuser())


@pytest.fixture
def short_lock_wait(settings: Any) -> None:
    settings.LOCK_WAIT_SECONDS = 1
    locks.reset_backend()  # the backend sizes its socket timeout from the wait


@contextmanager
def held_in_redis(balance_id: UUID) -> Iterator[None]:
    """Hold a balance's lock as another worker would, through the same backend."""
    backend = locks.get_backend()
    handle = backend.acquire(locks.lock_name(balance_id), time.monotonic() + 1)
    try:
        yield
    finally:
        backend.release(handle)
