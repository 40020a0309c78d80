"""Helpers for the admin (back office) test suites: staff users in their groups, and query counting."""

from __future__ import annotations

import importlib
from http import HTTPStatus
from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tests.factories import UserFactory

# BEGIN/COMMIT/SAVEPOINT are recorded by Django but are not round trips that grow with the rows.
_BOOKKEEPING = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def ensure_back_office_groups() -> None:
    """The Support and Finance groups, as the data migrations make them.

    The migrations have run once for the test database, but a transactional test
    elsewhere in the run truncates every table, groups included; running the
    migrations' own functions again (they are idempotent) brings them back.
    """
    groups = importlib.import_module("accounts.migrations.0002_back_office_groups")
    groups.create_back_office_groups(django_apps, None)
    export = importlib.import_module("transactions.migrations.0010_ledger_entry_names_and_export_permission")
    export.grant_export_ledger(django_apps, None)
    reset = importlib.import_module("mfa.migrations.0002_support_resets_mfa")
    reset.grant_reset_mfa(django_apps, None)


def staff_in(group_name: str, **fields: object) -> User:
    ensure_back_office_groups()
    user = UserFactory(is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def superuser() -> User:
    return UserFactory(is_staff=True, is_superuser=True)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def round_trips(client: Client, url: str) -> int:
    """How many SQL statements (not counting transaction bookkeeping) one GET of `url` runs."""
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return sum(1 for query in context.captured_queries if not query["sql"].startswith(_BOOKKEEPING))


def review(client: Client, url: str, data: dict[str, Any]) -> HttpResponse:
    """The first step of a back-office money form: it must answer with the confirmation page, having written nothing."""
    response = client.post(url, data)
    assert response.status_code == HTTPStatus.OK, response.status_code
    form = response.context.get("form")
    assert response.context.get("confirming"), form.errors if form is not None else response.content[:500]
    return response


def confirm(client: Client, url: str, reviewed: HttpResponse, **changes: str) -> HttpResponse:
    """Press the confirmation page's button: post back its hidden fields (with `changes`) and `confirm=yes`."""
    return client.post(url, {**dict(reviewed.context["hidden_fields"]), **changes, "confirm": "yes"})


def post_and_confirm(client: Client, url: str, data: dict[str, Any]) -> HttpResponse:
    """Fill a back-office money form and confirm it, as the staff member would."""
    return confirm(client, url, review(client, url, data))
