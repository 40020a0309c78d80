"""The webhooks in the back office: read-only pages that never show a secret, changelists whose queries do not
grow with the rows, and "redeliver now" for those allowed to."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from events.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from events.tests.webhook_support import balance_of, deliver, deposit, endpoint_for
from tests.admin_support import logged_in, round_trips
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("insecure_webhooks")]

ENDPOINTS = reverse("admin:events_webhookendpoint_changelist")
DELIVERIES = reverse("admin:events_webhookdelivery_changelist")
EVENTS = reverse("admin:events_event_changelist")


def _traffic(receiver, users: int) -> list[WebhookEndpoint]:
    endpoints = []
    for _ in range(users):
        user = UserFactory()
        endpoints.append(endpoint_for(user, receiver.url()))
        deposit(balance_of(user))
    deliver()
    return endpoints


@pytest.mark.parametrize("page", [ENDPOINTS, DELIVERIES, EVENTS])
def test_changelists_run_the_same_number_of_queries_for_few_and_many_rows(support, receiver, page):
    _traffic(receiver, 2)
    support.get(page)  # warm the content-type and permission caches
    few = round_trips(support, page)
    _traffic(receiver, 12)

    many = round_trips(support, page)

    assert many == few


def test_pages_never_show_a_secret(support, receiver):
    (endpoint,) = _traffic(receiver, 1)
    delivery = WebhookDelivery.objects.get()
    pages = [
        ENDPOINTS,
        reverse("admin:events_webhookendpoint_change", args=[endpoint.pk]),
        DELIVERIES,
        reverse("admin:events_webhookdelivery_change", args=[delivery.pk]),
    ]

    for page in pages:
        response = support.get(page)
        assert response.status_code == HTTPStatus.OK
        assert endpoint.secret not in response.content.decode()
        assert endpoint.secret.removeprefix("whsec_") not in response.content.decode()


def test_a_delivery_page_shows_its_attempts(support, receiver):
    _traffic(receiver, 1)
    delivery = WebhookDelivery.objects.get()

    html = support.get(reverse("admin:events_webhookdelivery_change", args=[delivery.pk])).content.decode()

    assert "Webhook attempts" in html and ">200<" in html.replace(" ", "")


def test_support_redelivers_now(support, receiver):
    _traffic(receiver, 1)
    delivery = WebhookDelivery.objects.get()

    response = support.post(DELIVERIES, {"action": "redeliver_now", "_selected_action": [str(delivery.pk)]})

    assert response.status_code == HTTPStatus.FOUND
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert timezone.now() - delivery.next_attempt_at < timedelta(seconds=30)
    deliver()
    assert len(receiver.received) == 2
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_count == 2


def test_redelivery_needs_its_permission(receiver):
    _traffic(receiver, 1)
    delivery = WebhookDelivery.objects.get()
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="events", codename__startswith="view_")
    )
    client = logged_in(viewer)

    page = client.get(DELIVERIES)
    client.post(DELIVERIES, {"action": "redeliver_now", "_selected_action": [str(delivery.pk)]})

    assert page.status_code == HTTPStatus.OK and "redeliver_now" not in page.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_nothing_is_added_changed_or_deleted_through_the_admin(root, receiver):
    (endpoint,) = _traffic(receiver, 1)
    delivery = WebhookDelivery.objects.get()
    event = Event.objects.get()

    for model, obj in (("webhookendpoint", endpoint), ("webhookdelivery", delivery), ("event", event)):
        assert root.get(reverse(f"admin:events_{model}_add")).status_code == HTTPStatus.FORBIDDEN
        assert root.get(reverse(f"admin:events_{model}_delete", args=[obj.pk])).status_code == HTTPStatus.FORBIDDEN
        change = root.get(reverse(f"admin:events_{model}_change", args=[obj.pk]))
        assert change.status_code == HTTPStatus.OK and "Save" not in change.content.decode()


def test_the_events_changelist_filters_by_user_and_type(support, receiver):
    first, _ = _traffic(receiver, 2)

    by_user = support.get(EVENTS, {"user": str(first.user_id)}).context["cl"].result_list
    by_type = support.get(EVENTS, {"type__exact": "hold.created"}).context["cl"].result_list
    by_email = support.get(EVENTS, {"q": first.user.email}).context["cl"].result_list

    assert [event.user_id for event in by_user] == [first.user_id]
    assert list(by_type) == []
    assert [event.user_id for event in by_email] == [first.user_id]
