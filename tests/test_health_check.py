"""The per-request connection health check (wallet_project/postgres): no round trip for a quiet
idle connection, Django's `SELECT 1` as soon as the server has said anything, and a connection the
server closed is replaced before the request uses it."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
from django.db import connections

from tests.live import backend_alive, terminate_backend, wait_until
from wallet_project.postgres.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)

connection = connections["default"]  # the wrapper itself, not the proxy: its methods are patched below


@pytest.fixture
def idle_connection() -> Iterator[None]:
    """The test's connection open, outside a transaction, as between two requests of a worker."""
    assert isinstance(connection, DatabaseWrapper)
    connection.ensure_connection()
    assert connection.get_autocommit()
    yield
    connection.close()


def _start_of_a_request() -> None:
    # What Django does at request_started (close_old_connections), then at the first query.
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()


def test_a_quiet_idle_connection_is_checked_without_a_round_trip(idle_connection: None) -> None:
    assert connection.health_check_enabled
    with mock.patch.object(connection, "is_usable", wraps=connection.is_usable) as is_usable:
        _start_of_a_request()
    assert is_usable.call_count == 0
    assert connection.health_check_done
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it(idle_connection: None) -> None:
    old_pid = connection.connection.info.backend_pid
    terminate_backend(old_pid)
    wait_until(lambda: not backend_alive(old_pid), timeout=5, what="the backend to end")

    with mock.patch.object(connection, "is_usable", wraps=connection.is_usable) as is_usable:
        _start_of_a_request()
    # The socket had something to read (the server's goodbye): Django's own check ran, failed, and closed it.
    assert is_usable.call_count == 1
    assert connection.connection is None

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    assert new_pid != old_pid


def test_inside_a_transaction_django_decides(idle_connection: None) -> None:
    connection.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # the transaction has begun
        connection.health_check_done = False
        with mock.patch.object(connection, "is_usable", wraps=connection.is_usable) as is_usable:
            connection.close_if_health_check_failed()
        assert is_usable.call_count == 1
    finally:
        connection.rollback()
        connection.set_autocommit(True)
