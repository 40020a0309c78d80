"""Delivering webhooks to a real receiver on loopback: the signed body, retries, timeouts, redirects, rotation,
disabling, and which endpoints an event fans out to."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from events.feed import render_event
from events.models import DeliveryStatus, Event, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.outbox import record
from events.tests.webhook_support import (
    HANG,
    TRICKLE,
    balance_of,
    deliver,
    deliveries_of,
    deposit,
    endpoint_for,
    make_due,
)
from events.webhooks import delivery, services
from events.webhooks.dispatch import events_dispatch
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("insecure_webhooks")]


def test_a_movement_is_posted_once_signed_with_the_event_as_the_feed_renders_it(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    deposit(balance_of(owner), "12.50")

    deliver()

    (request,) = receiver.received
    event = Event.objects.get(user=owner)
    assert request.path == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == str(event.pk)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert Webhook(endpoint.secret).verify(request.body, request.headers) == render_event(event)
    assert json.loads(request.body)["data"]["entries"][0]["amount"] == "12.50"
    (sent,) = deliveries_of(endpoint)
    assert sent.status == DeliveryStatus.DELIVERED
    assert sent.attempt_count == 1 and sent.next_attempt_at is None and sent.delivered_at is not None
    (attempt,) = sent.attempts.all()
    assert attempt.status_code == 200 and attempt.error == "" and attempt.response_body == "ok"


def test_a_signature_made_with_another_secret_or_over_other_bytes_does_not_verify(owner, receiver):
    endpoint_for(owner, receiver.url())
    deposit(balance_of(owner))

    deliver()

    (request,) = receiver.received
    with pytest.raises(WebhookVerificationError):
        Webhook(services.signing.new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WebhookEndpoint.objects.get().secret).verify(request.body + b" ", request.headers)


def test_a_receiver_answering_500_then_200_gets_the_event_twice_and_is_then_done(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer(500)
    deposit(balance_of(owner))

    deliver()
    (pending,) = deliveries_of(endpoint)
    assert pending.status == DeliveryStatus.PENDING
    (first,) = pending.attempts.all()
    # The first retry is about 5 s later (±10 %).
    assert timedelta(seconds=4.4) <= pending.next_attempt_at - first.attempted_at <= timedelta(seconds=5.6)
    deliver()  # not due yet: nothing is sent
    assert len(receiver.received) == 1

    make_due()
    deliver()
    make_due()
    deliver()

    assert [request.headers["webhook-id"] for request in receiver.received] == [str(pending.event_id)] * 2
    (done,) = deliveries_of(endpoint)
    assert done.status == DeliveryStatus.DELIVERED and done.attempt_count == 2
    assert [(attempt.number, attempt.status_code) for attempt in done.attempts.all()] == [(1, 500), (2, 200)]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # the success cleared the failure


def test_a_receiver_that_hangs_is_cut_at_the_timeout_and_retried(owner, receiver, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS = 1
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer(HANG)
    deposit(balance_of(owner))

    started = time.monotonic()
    deliver()
    elapsed = time.monotonic() - started

    assert elapsed < 5
    (pending,) = deliveries_of(endpoint)
    (attempt,) = pending.attempts.all()
    assert pending.status == DeliveryStatus.PENDING and pending.next_attempt_at is not None
    assert attempt.status_code is None
    assert attempt.error == "No answer within 1 s."
    assert attempt.duration_ms >= 900


def test_a_receiver_that_trickles_its_answer_is_cut_at_the_timeout_too(owner, receiver, settings):
    # Each byte comes well within the read timeout; all of them together (about 14 s) do not.
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS = 1
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer(TRICKLE)
    deposit(balance_of(owner))

    started = time.monotonic()
    deliver()
    elapsed = time.monotonic() - started

    assert elapsed < 5
    (attempt,) = deliveries_of(endpoint)[0].attempts.all()
    assert attempt.status_code is None and attempt.error == "No answer within 1 s."


def test_a_redirect_is_not_followed_and_counts_as_a_failure(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer((302, b"", {"Location": receiver.url("/elsewhere")}))
    deposit(balance_of(owner))

    deliver()

    assert [request.path for request in receiver.received] == ["/hooks"]
    (pending,) = deliveries_of(endpoint)
    (attempt,) = pending.attempts.all()
    assert pending.status == DeliveryStatus.PENDING
    assert attempt.status_code == 302 and "Redirects are not followed" in attempt.error


def test_only_the_first_4_kb_of_the_answer_are_read(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer((200, b"x" * 100_000, {}))
    deposit(balance_of(owner))

    deliver()

    (done,) = deliveries_of(endpoint)
    (attempt,) = done.attempts.all()
    assert done.status == DeliveryStatus.DELIVERED
    assert attempt.response_body == "x" * 4096


def test_a_delivery_whose_retries_run_out_is_failed_after_eight_attempts(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    receiver.answer(*[503] * 20)
    deposit(balance_of(owner))

    deliver()
    for _ in range(len(delivery.RETRY_SCHEDULE)):
        make_due()
        deliver()
    make_due()  # nothing is pending any more
    deliver()

    (failed,) = deliveries_of(endpoint)
    assert len(receiver.received) == 8
    assert failed.status == DeliveryStatus.FAILED and failed.next_attempt_at is None
    assert [attempt.number for attempt in failed.attempts.all()] == list(range(1, 9))


def test_the_retry_schedule_is_about_five_seconds_to_ten_hours_with_jitter():
    expected = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for attempts, seconds in enumerate(expected, start=1):
        for _ in range(20):
            delay = delivery.retry_delay(attempts).total_seconds()
            assert seconds * 0.9 <= delay <= seconds * 1.1
    assert delivery.retry_delay(8) is None
    assert sum(expected) / 3600 == pytest.approx(27.6, abs=0.1)


def test_an_endpoint_whose_attempts_all_failed_for_three_days_is_disabled(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    balance = balance_of(owner)
    receiver.answer(500)
    deposit(balance)
    deliver()
    endpoint.refresh_from_db()
    first_failure = endpoint.failing_since
    assert first_failure is not None and endpoint.is_enabled

    # Three days of failures later (the first failure moved back rather than waited for):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=first_failure - timedelta(days=3))
    receiver.answer(500)
    make_due()
    deliver()

    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert endpoint.disabled_reason == delivery.DISABLED_AFTER_FAILURES
    # A disabled endpoint gets no new deliveries, and its pending one waits.
    deposit(balance)
    make_due()
    deliver()
    assert len(receiver.received) == 2
    assert [sent.status for sent in deliveries_of(endpoint)] == [DeliveryStatus.PENDING]

    # Enabled again by its owner, the waiting delivery goes out.
    services.webhook_endpoint_update(user=owner, endpoint_id=endpoint.pk, is_enabled=True)
    make_due()
    deliver()
    endpoint.refresh_from_db()
    assert endpoint.is_enabled and endpoint.disabled_reason == "" and endpoint.failing_since is None
    assert [sent.status for sent in deliveries_of(endpoint)] == [DeliveryStatus.DELIVERED]


def test_a_failure_after_a_success_starts_the_three_days_again(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=10))
    deposit(balance_of(owner))

    deliver()  # a success

    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.is_enabled


# --- the secret's rotation ----------------------------------------------------------------------------------------


def test_after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    old_secret = endpoint.secret
    rotated = services.webhook_endpoint_rotate_secret(user=owner, endpoint_id=endpoint.pk)
    assert rotated.secret != old_secret
    assert timedelta(hours=23, minutes=59) < rotated.previous_secret_expires_at - timezone.now() <= timedelta(hours=24)
    balance = balance_of(owner)

    deposit(balance)
    deliver()
    during = receiver.received[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, rotated.secret):
        Webhook(secret).verify(during.body, during.headers)

    # A day later:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    deposit(balance)
    deliver()
    after = receiver.received[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(rotated.secret).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(after.body, after.headers)


# --- fan-out ------------------------------------------------------------------------------------------------------


def test_an_event_goes_to_each_enabled_endpoint_of_its_user_that_asked_for_its_type(owner, receiver):
    everything = endpoint_for(owner, receiver.url("/everything"), ["*"])
    movements = endpoint_for(owner, receiver.url("/movements"), ["movement.*"])
    holds = endpoint_for(owner, receiver.url("/holds"), ["hold.*", "wallet.created"])
    disabled = endpoint_for(owner, receiver.url("/disabled"), ["*"])
    services.webhook_endpoint_update(user=owner, endpoint_id=disabled.pk, is_enabled=False)
    someone_else = endpoint_for(UserFactory(), receiver.url("/someone-else"), ["*"])

    deposit(balance_of(owner))
    deliver()

    assert sorted(request.path for request in receiver.received) == ["/everything", "/movements"]
    assert [len(deliveries_of(endpoint)) for endpoint in (everything, movements, holds, disabled, someone_else)] == [
        1,
        1,
        0,
        0,
        0,
    ]
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()


def test_an_endpoint_receives_only_events_written_after_it_was_made(owner, receiver):
    balance = balance_of(owner)
    deposit(balance)
    endpoint = endpoint_for(owner, receiver.url())
    deposit(balance)

    deliver()

    assert len(deliveries_of(endpoint)) == 1
    assert len(receiver.received) == 1


def test_the_staff_stream_has_no_webhooks(owner, receiver):
    endpoint_for(owner, receiver.url())
    record(EventType.RATE_CHANGED, user_id=None, data={"base": "USD", "quote": "EUR", "rate": "0.91"})

    assert "Dispatched 1 event(s)" in deliver()

    assert WebhookDelivery.objects.count() == 0
    assert receiver.received == []
    assert Event.objects.get().dispatched_at is not None


def test_an_endpoint_deleted_while_its_delivery_is_in_flight_leaves_nothing_behind(owner, receiver):
    endpoint = endpoint_for(owner, receiver.url())
    deposit(balance_of(owner))
    events_dispatch()
    (claimed,) = delivery.deliveries_claim(limit=10)
    services.webhook_endpoint_delete(user=owner, endpoint_id=endpoint.pk)

    outcome = delivery.post(claimed)

    assert outcome.delivered
    assert delivery.delivery_record(outbound=claimed, outcome=outcome) is False
    assert WebhookAttempt.objects.count() == 0 and WebhookDelivery.objects.count() == 0
