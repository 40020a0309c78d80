"""Who gets into the back office, the two staff groups, and users with their wallets."""

from __future__ import annotations

import importlib
from http import HTTPStatus

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.admin_support import ensure_back_office_groups, logged_in, round_trips, staff_in, superuser
from tests.factories import PASSWORD, UserFactory, WalletFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")
USERS = reverse("admin:accounts_user_changelist")
QUERY_BOUND = 20


def user_url(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def codenames(group_name: str) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Group.objects.get(name=group_name).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


# --- the groups ---------------------------------------------------------------------------


def test_support_group_may_view_everything_and_change_nothing_but_void_holds_redeliver_webhooks_and_reset_mfa():
    ensure_back_office_groups()
    every_view = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(
            content_type__app_label__in=["accounts", "wallets", "transactions", "events", "loyalty", "backoffice"],
            codename__startswith="view_",
        ).values_list("content_type__app_label", "codename")
    }

    support = codenames("Support")

    assert {"accounts.view_user", "wallets.view_walletbalance", "transactions.view_transaction"} <= support
    assert {"events.view_event", "events.view_webhookendpoint", "events.view_webhookdelivery"} <= support
    assert {"loyalty.view_loyaltyprogram", "loyalty.view_reward"} <= support
    # Voiding a hold releases reserved money to its owner and moves none; a redelivery tells the owner again
    # what already happened; resetting a user's second factor (their app and recovery codes are lost) moves
    # nothing either.
    assert support == every_view | {"transactions.void_hold", "events.redeliver_webhookdelivery", "mfa.reset_mfa"}


def test_finance_group_may_view_everything_adjust_freeze_add_rates_refund_export_and_manage_loyalty():
    ensure_back_office_groups()

    finance = codenames("Finance")

    assert codenames("Support") <= finance
    assert finance - codenames("Support") == {
        "wallets.adjust_balance",
        "wallets.freeze_wallet",
        "wallets.add_exchangerate",
        "transactions.refund_payment",
        "transactions.export_ledger",
        "loyalty.add_loyaltyprogram",
        "loyalty.change_loyaltyprogram",
    }
    assert not {
        "transactions.add_transaction",
        "transactions.change_transaction",
        "wallets.change_walletbalance",
        "loyalty.delete_loyaltyprogram",
        "loyalty.change_reward",
    } & (finance)


def test_creating_the_groups_again_changes_nothing():
    ensure_back_office_groups()
    before = (codenames("Support"), codenames("Finance"))

    ensure_back_office_groups()

    assert (codenames("Support"), codenames("Finance")) == before
    assert Group.objects.filter(name__in=["Support", "Finance"]).count() == 2


def test_a_later_migration_bringing_the_groups_up_to_date_keeps_export_and_mfa_reset():
    """Migrations of new models call the groups' function again; it must not take back what others granted."""
    ensure_back_office_groups()
    before = (codenames("Support"), codenames("Finance"))
    groups = importlib.import_module("accounts.migrations.0002_back_office_groups")

    groups.create_back_office_groups(django_apps, None)

    assert (codenames("Support"), codenames("Finance")) == before
    assert {"transactions.export_ledger", "mfa.reset_mfa", "backoffice.view_reconcilerun"} <= codenames("Finance")
    assert {"mfa.reset_mfa", "backoffice.view_reconcilerun"} <= codenames("Support")
    assert "transactions.export_ledger" not in codenames("Support")


# --- logging in -----------------------------------------------------------------------------


def test_non_staff_user_cannot_log_in_to_the_admin():
    user = UserFactory(email="customer@example.com")
    client = Client()

    response = client.post(LOGIN, {"username": user.email, "password": PASSWORD, "next": INDEX})
    index = client.get(INDEX)

    assert response.status_code == HTTPStatus.OK
    assert "staff account" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert index.status_code == HTTPStatus.FOUND
    assert index["Location"].startswith(LOGIN)


def test_non_staff_user_with_a_session_is_sent_to_the_login_page():
    client = logged_in(UserFactory())

    response = client.get(USERS)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(LOGIN)


def test_staff_user_logs_in_with_their_email_in_any_case():
    user = staff_in("Support", email="agent@example.com")
    client = Client()

    response = client.post(LOGIN, {"username": "Agent@Example.COM", "password": PASSWORD, "next": INDEX})

    assert response.status_code == HTTPStatus.FOUND
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.get(INDEX).status_code == HTTPStatus.OK


# --- users and their wallets ----------------------------------------------------------------


def test_support_sees_a_user_with_links_to_their_wallets_but_cannot_change_them():
    client = logged_in(staff_in("Support"))
    customer = UserFactory(name="Ann Customer")
    wallet = WalletFactory(owner=customer, name="Holiday fund")

    listing = client.get(USERS, {"q": customer.email})
    page = client.get(user_url(customer))
    change = client.post(user_url(customer), {"email": customer.email, "name": "Changed", "is_staff": "on"})

    assert [row.pk for row in listing.context["cl"].result_list] == [customer.pk]
    assert page.status_code == HTTPStatus.OK
    body = page.content.decode()
    assert "Holiday fund" in body
    assert reverse("admin:wallets_wallet_change", args=[wallet.pk]) in body
    assert 'name="_save"' not in body
    assert change.status_code == HTTPStatus.FORBIDDEN
    customer.refresh_from_db()
    assert (customer.name, customer.is_staff) == ("Ann Customer", False)


def test_superuser_adds_a_user_by_email():
    client = logged_in(superuser())

    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "New.Agent@Example.com",
            "name": "New Agent",
            "usable_password": "true",
            "password1": "a-long-and-unusual-passphrase-7",
            "password2": "a-long-and-unusual-passphrase-7",
        },
    )

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    created = User.objects.get(email="new.agent@example.com")
    assert created.check_password("a-long-and-unusual-passphrase-7")
    assert not created.is_staff


def test_superuser_cannot_add_a_second_user_with_the_same_email_in_another_case():
    client = logged_in(superuser())
    UserFactory(email="taken@example.com")

    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "TAKEN@example.com",
            "name": "Copycat",
            "usable_password": "true",
            "password1": "a-long-and-unusual-passphrase-7",
            "password2": "a-long-and-unusual-passphrase-7",
        },
    )

    assert response.status_code == HTTPStatus.OK
    assert "email" in response.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_superuser_puts_a_staff_member_in_the_finance_group():
    ensure_back_office_groups()
    client = logged_in(superuser())
    agent = UserFactory(is_staff=True)
    page = client.get(user_url(agent))
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "groups": [str(Group.objects.get(name="Finance").pk)],
            "user_permissions": [],
            "is_staff": "on",
            "is_active": "on",
            "wallets-TOTAL_FORMS": "0",
            "wallets-INITIAL_FORMS": "0",
            "wallets-MIN_NUM_FORMS": "0",
            "wallets-MAX_NUM_FORMS": "0",
        }
    )
    data.pop("last_login", None)
    data.pop("date_joined", None)
    data.pop("id", None)

    response = client.post(user_url(agent), data)

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    assert agent.has_perm("wallets.adjust_balance")


# --- query counts ---------------------------------------------------------------------------


def test_user_changelist_runs_the_same_number_of_queries_for_3_and_30_users(django_assert_max_num_queries):
    client = logged_in(staff_in("Support"))
    UserFactory.create_batch(2)
    client.get(USERS)

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(client, USERS)
    UserFactory.create_batch(27)
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(client, USERS)

    assert User.objects.count() == 30
    assert many == few


def test_user_page_runs_the_same_number_of_queries_for_3_and_30_wallets(django_assert_max_num_queries):
    client = logged_in(superuser())
    customer = UserFactory()
    WalletFactory.create_batch(3, owner=customer)
    client.get(user_url(customer))

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(client, user_url(customer))
    WalletFactory.create_batch(27, owner=customer)
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(client, user_url(customer))

    assert customer.wallets.count() == 30
    assert many == few
