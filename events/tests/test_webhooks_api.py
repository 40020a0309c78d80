"""The webhook endpoints API: register (the secret shown once), list, read, change, delete, rotate, the limit of
16, another user's endpoint answering 404, and an endpoint's deliveries with their attempts."""

from __future__ import annotations

import base64
import re
import threading
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conftest import client_for, error_code
from events.models import WebhookDelivery, WebhookEndpoint
from events.tests.webhook_support import balance_of, deliver, deposit, endpoint_for
from events.webhooks.services import MAX_ENDPOINTS_PER_USER
from tests.factories import UserFactory

ENDPOINTS = "/api/v1/webhook-endpoints/"
URL = "https://93.184.216.34/hooks"
FIELDS = {
    "id",
    "url",
    "description",
    "event_types",
    "is_enabled",
    "disabled_reason",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
}

pytestmark = pytest.mark.django_db


def _create(api, **body):
    return api.post(ENDPOINTS, {"url": URL, "event_types": ["movement.created"], **body}, format="json")


def test_registering_answers_the_endpoint_and_its_secret_once(owner):
    api = client_for(owner)

    response = _create(api, event_types=["movement.created", "hold.*", "hold.*"], description="Books")

    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    assert set(body) == FIELDS | {"secret"}
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]+={0,2}", body["secret"])
    assert 24 <= len(base64.b64decode(body["secret"].removeprefix("whsec_"))) <= 64
    assert body["event_types"] == ["movement.created", "hold.*"]
    assert body["is_enabled"] is True and body["disabled_reason"] is None
    assert body["description"] == "Books" and body["url"] == URL
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.user == owner and endpoint.secret == body["secret"]
    # Never shown again:
    listed = api.get(ENDPOINTS).json()
    assert listed["count"] == 1 and set(listed["results"][0]) == FIELDS
    assert set(api.get(f"{ENDPOINTS}{endpoint.pk}/").json()) == FIELDS
    assert body["secret"] not in api.get(ENDPOINTS).content.decode()


@pytest.mark.parametrize(
    ("event_types", "message"),
    [
        ([], "This list may not be empty."),
        (["rate.changed"], "rate.changed is for staff only"),
        (["rate.*"], "is not a valid choice"),
        (["movement.deleted"], "is not a valid choice"),
        ("movement.created", "Expected a list"),
        ([1], "is not a valid choice"),
        (["movement.created", [None]], "is not a valid choice"),
        (["movement.created", {}], "is not a valid choice"),
    ],
)
def test_event_types_must_be_a_non_empty_list_of_known_types_or_prefixes(owner, event_types, message):
    response = _create(client_for(owner), event_types=event_types)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in str(response.json()["error"]["details"]["event_types"])
    assert not WebhookEndpoint.objects.exists()


def test_a_user_has_at_most_sixteen_endpoints(owner):
    api = client_for(owner)
    for _ in range(MAX_ENDPOINTS_PER_USER):
        assert _create(api).status_code == HTTPStatus.CREATED

    response = _create(api)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "too_many_webhook_endpoints"
    assert response.json()["error"]["details"] == {"limit": 16}
    assert WebhookEndpoint.objects.filter(user=owner).count() == 16
    assert _create(client_for(UserFactory())).status_code == HTTPStatus.CREATED  # the limit is per user


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_when_registrations_race(owner):
    for _ in range(MAX_ENDPOINTS_PER_USER - 2):
        endpoint_for(owner, URL)
    barrier = threading.Barrier(6)
    statuses = []

    def register():
        try:
            barrier.wait()
            statuses.append(_create(client_for(owner)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [HTTPStatus.CREATED] * 2 + [HTTPStatus.UNPROCESSABLE_ENTITY] * 4
    assert WebhookEndpoint.objects.filter(user=owner).count() == MAX_ENDPOINTS_PER_USER


def test_patch_changes_only_what_is_sent(owner):
    endpoint = endpoint_for(owner, URL, ["movement.created"])
    api = client_for(owner)

    changed = api.patch(f"{ENDPOINTS}{endpoint.pk}/", {"event_types": ["*"], "description": "All"}, format="json")
    disabled = api.patch(f"{ENDPOINTS}{endpoint.pk}/", {"is_enabled": False}, format="json")

    assert changed.status_code == HTTPStatus.OK
    assert changed.json()["event_types"] == ["*"] and changed.json()["description"] == "All"
    assert changed.json()["url"] == URL and "secret" not in changed.json()
    assert disabled.json()["is_enabled"] is False
    assert disabled.json()["disabled_reason"] == "Disabled by its owner."
    enabled = api.patch(f"{ENDPOINTS}{endpoint.pk}/", {"is_enabled": True}, format="json").json()
    assert enabled["is_enabled"] is True and enabled["disabled_reason"] is None
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["*"] and endpoint.is_enabled


@pytest.mark.parametrize(
    "body",
    [
        {"is_enabled": "false"},
        {"is_enabled": 0},
        {"event_types": []},
        {"event_types": [[None, None]]},
        {"description": None},
        {"description": 7},
        {"url": ""},
        {"url": 0},
    ],
)
def test_patch_refuses_malformed_fields(owner, body):
    endpoint = endpoint_for(owner, URL)

    response = client_for(owner).patch(f"{ENDPOINTS}{endpoint.pk}/", body, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()["error"]["details"]) == set(body)


def test_delete_removes_the_endpoint_and_its_deliveries(owner, receiver, settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    endpoint = endpoint_for(owner, receiver.url())
    deposit(balance_of(owner))
    deliver()
    api = client_for(owner)

    response = api.delete(f"{ENDPOINTS}{endpoint.pk}/")

    assert response.status_code == HTTPStatus.NO_CONTENT and response.content == b""
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert api.get(f"{ENDPOINTS}{endpoint.pk}/").status_code == HTTPStatus.NOT_FOUND
    assert api.delete(f"{ENDPOINTS}{endpoint.pk}/").status_code == HTTPStatus.NOT_FOUND


def test_rotating_answers_the_new_secret_once_and_keeps_the_old_one_for_a_day(owner):
    api = client_for(owner)
    created = _create(api).json()

    response = api.post(f"{ENDPOINTS}{created['id']}/rotate-secret/")

    assert response.status_code == HTTPStatus.OK
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    expires_at = parse_datetime(rotated["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < expires_at - timezone.now() <= timedelta(hours=24)
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.secret, endpoint.previous_secret) == (rotated["secret"], created["secret"])
    assert "secret" not in api.get(f"{ENDPOINTS}{created['id']}/").json()


def test_another_users_endpoint_answers_404_to_everything(owner):
    endpoint = endpoint_for(owner, URL)
    stranger = client_for(UserFactory())
    path = f"{ENDPOINTS}{endpoint.pk}/"

    answers = [
        stranger.get(path),
        stranger.patch(path, {"description": "mine now"}, format="json"),
        stranger.delete(path),
        stranger.post(f"{path}rotate-secret/"),
        stranger.get(f"{path}deliveries/"),
    ]

    assert [response.status_code for response in answers] == [HTTPStatus.NOT_FOUND] * 5
    assert {error_code(response) for response in answers} == {"not_found"}
    assert stranger.get(ENDPOINTS).json()["results"] == []
    unchanged = WebhookEndpoint.objects.get()
    assert (unchanged.description, unchanged.secret) == (endpoint.description, endpoint.secret)


def test_the_deliveries_show_each_attempt_its_status_duration_error_and_the_next_one(owner, receiver, settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    endpoint = endpoint_for(owner, receiver.url())
    balance = balance_of(owner)
    receiver.answer(500)
    deposit(balance)
    deliver()
    deposit(balance)
    deliver()
    api = client_for(owner)

    page = api.get(f"{ENDPOINTS}{endpoint.pk}/deliveries/").json()

    assert set(page) == {"next", "previous", "results"}
    newest, oldest = page["results"]
    assert newest["status"] == "delivered" and newest["next_attempt_at"] is None
    assert newest["delivered_at"] is not None and newest["event_type"] == "movement.created"
    assert oldest["status"] == "pending" and oldest["next_attempt_at"] is not None
    (attempt,) = oldest["attempts"]
    assert set(attempt) == {"number", "attempted_at", "status_code", "duration_ms", "error"}
    assert attempt["number"] == 1 and attempt["status_code"] == 500 and attempt["error"] is None
    assert attempt["duration_ms"] >= 0
    assert [d["id"] for d in api.get(f"{ENDPOINTS}{endpoint.pk}/deliveries/?status=pending").json()["results"]] == [
        oldest["id"]
    ]
    bad = api.get(f"{ENDPOINTS}{endpoint.pk}/deliveries/?status=sent")
    assert bad.status_code == HTTPStatus.BAD_REQUEST and "status" in bad.json()["error"]["details"]


def test_the_deliveries_page_by_cursor(owner, receiver, settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    endpoint = endpoint_for(owner, receiver.url())
    balance = balance_of(owner)
    for _ in range(3):
        deposit(balance)
    deliver()
    api = client_for(owner)

    first = api.get(f"{ENDPOINTS}{endpoint.pk}/deliveries/?page_size=2").json()
    second = api.get(first["next"]).json()

    ids = [d["id"] for d in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 3
    assert second["next"] is None
