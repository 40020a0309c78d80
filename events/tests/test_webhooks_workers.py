"""Several workers at once, and a worker killed mid-delivery: each (event, endpoint) is sent once in normal
operation, and a dead worker's claimed delivery is sent again after its lease (at least once)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from events.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.tests.webhook_support import HANG, balance_of, deliver, deposit, endpoint_for
from events.webhooks import delivery, services
from events.webhooks.dispatch import events_dispatch
from tests.live import BASE_DIR, backends_blocked_by, service_environment, sql_connection, wait_until

pytestmark = pytest.mark.usefixtures("insecure_webhooks")

# A worker process with webhooks allowed to reach the test's receiver: the setting is overridden in-process,
# as the environment variable is refused with DEBUG off.
WORKER = """
import django
django.setup()
from django.conf import settings
settings.WEBHOOKS_ALLOW_INSECURE = True
from django.core.management import call_command
call_command("deliver_webhooks", "--interval", "0.05")
"""


def _in_threads(count: int, work) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_event_to_each_endpoint_once(owner, receiver):
    paths = ["/a", "/b", "/c"]
    for path in paths:
        endpoint_for(owner, receiver.url(path))
    balance = balance_of(owner)
    for _ in range(12):
        deposit(balance)

    _in_threads(2, deliver)

    sent = Counter((request.path, request.headers["webhook-id"]) for request in receiver.received)
    events = {str(pk) for pk in Event.objects.values_list("pk", flat=True)}
    assert set(sent) == {(path, event) for path in paths for event in events}
    assert set(sent.values()) == {1}
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED, attempt_count=1).count() == 36
    assert WebhookAttempt.objects.count() == 36


@pytest.mark.django_db(transaction=True)
def test_fan_out_by_several_workers_makes_each_delivery_once(owner, receiver):
    endpoint_for(owner, receiver.url())
    balance = balance_of(owner)
    for _ in range(30):
        deposit(balance)

    def dispatch_in_small_batches() -> None:
        while events_dispatch(limit=3):
            pass

    _in_threads(4, dispatch_in_small_batches)

    assert WebhookDelivery.objects.count() == Event.objects.count() == 30
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leaves_it_to_be_sent_again_after_its_lease(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer(HANG)
    deposit(balance_of(owner))
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], cwd=BASE_DIR, env=service_environment(), stdout=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: receiver.received, timeout=30, what="the worker's POST")
    finally:
        worker.kill()  # SIGKILL: no chance to record anything
        worker.wait(timeout=30)

    claimed = WebhookDelivery.objects.get(endpoint=endpoint)
    assert claimed.status == DeliveryStatus.PENDING and claimed.attempt_count == 0
    assert claimed.leased_until > timezone.now()  # still the dead worker's until its lease runs out
    deliver()
    assert len(receiver.received) == 1

    # The lease runs out (moved back rather than waited for); the next worker sends it again.
    WebhookDelivery.objects.filter(pk=claimed.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    deliver()

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(claimed.event_id)
    claimed.refresh_from_db()
    assert claimed.status == DeliveryStatus.DELIVERED and claimed.attempt_count == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_worker_delivers_until_sigterm_then_stops_cleanly(owner, receiver):
    endpoint_for(owner, receiver.url())
    deposit(balance_of(owner))
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        cwd=BASE_DIR,
        env=service_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists(),
            timeout=30,
            what="a delivery",
        )
        worker.send_signal(signal.SIGTERM)
        out, errors = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()

    assert worker.returncode == 0, errors
    assert out.strip().endswith("Stopped.")
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_waits_for_an_attempt_being_recorded_and_deletes_it_too(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    deposit(balance_of(owner))
    events_dispatch()
    (claimed,) = delivery.deliveries_claim(limit=1)
    # A worker recording its attempt, as delivery_record does: the delivery's row held, the attempt written,
    # not yet committed.
    recorder = sql_connection(autocommit=False)
    recorder.execute("SELECT id FROM events_webhookdelivery WHERE id = %s FOR NO KEY UPDATE", [claimed.delivery_id])
    recorder.execute(
        "INSERT INTO events_webhookattempt (delivery_id, number, attempted_at, duration_ms, status_code, error, "
        "response_body) VALUES (%s, 1, now(), 5, 200, '', '')",
        [claimed.delivery_id],
    )
    errors: list[Exception] = []

    def delete() -> None:
        try:
            services.webhook_endpoint_delete(user=owner, endpoint_id=endpoint.pk)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    deleting = threading.Thread(target=delete)
    deleting.start()
    try:
        wait_until(lambda: backends_blocked_by(recorder), timeout=10, what="the deletion to wait for the recorder")
        recorder.commit()
    finally:
        recorder.close()
        deleting.join(timeout=30)

    assert errors == []
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()
