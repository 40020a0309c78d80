"""The admin's home page as Finance and Support see it: figures, links, who sees what, and what it costs."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice.models import ReconcileRun
from events.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from tests.admin_support import logged_in, round_trips, staff_in
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.loyalty import book_all, program_in
from transactions.holds.services import hold_create
from transactions.models import Transaction, TransactionSource
from transactions.services import payment_create, refund_create, transfer_create
from wallet_project.ids import uuid7_floor
from wallets.models import Wallet, WalletBalance
from wallets.services import wallet_set_frozen

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


def page(client) -> str:
    response = client.get(INDEX)
    assert response.status_code == HTTPStatus.OK, response.status_code
    return response.content.decode()


def section(body: str, element_id: str) -> str:
    """The HTML of one element of the page, from its opening tag to the next section of the same kind."""
    match = re.search(rf'<(section|a)\b[^>]*\bid="{element_id}".*?</\1>', body, re.S)
    assert match is not None, f"#{element_id} is not on the page"
    return match.group(0)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def pay(balance: WalletBalance, amount: str, merchant: str = "Coffee Shop") -> Transaction:
    return payment_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), merchant=merchant, owner=None, created_by=None
    )


def failed_delivery(user: Any) -> WebhookDelivery:
    """A delivery whose retries ran out, to an endpoint the worker has since disabled."""
    endpoint = WebhookEndpoint.objects.create(
        user=user,
        url="https://hooks.example.com/wallet",
        secret="whsec_test",
        is_enabled=False,
        disabled_reason="Every attempt failed for 3 days.",
    )
    event = Event.objects.filter(user=user).order_by("sequence").first()
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint, status=DeliveryStatus.FAILED, attempt_count=8)


@pytest.fixture
def back_office_day() -> dict[str, Any]:
    """A day of the service: balances in two currencies, a hold, a transfer, a payment and its refund, a frozen
    wallet, a webhook that failed, cashback its programme could not fund, and a reconcile that passed."""
    alice = UserFactory(email="alice@example.com", name="Alice")
    usd = funded_balance(currency="USD", amount="1250.00", wallet=WalletFactory(owner=alice, name="Main"))
    eur = funded_balance(currency="EUR", amount="80.00", wallet=WalletFactory(owner=alice, name="Travel"))
    bob_usd = funded_balance(currency="USD", amount="40.00")
    hold_create(wallet_balance_id=usd.pk, amount=Decimal("100.00"), owner=None, created_by=None, merchant="Hotel")
    transfer_create(
        from_wallet_balance_id=usd.pk,
        to_wallet_balance_id=bob_usd.pk,
        amount=Decimal("50.00"),
        owner=None,
        created_by=None,
        source=TransactionSource.SEED,
    )
    program = program_in("EUR", earn_rate=500, funding="0.10", name="Autumn cashback")
    payment = pay(eur, "20.00")  # earns 1.00 EUR, more than the funding balance holds
    book_all()
    refund_create(payment_id=payment.pk, amount=Decimal("5.00"), created_by=None)
    frozen = WalletFactory(name="Suspicious", owner=UserFactory(email="mallory@example.com"))
    wallet_set_frozen(wallet_id=frozen.pk, frozen=True)
    delivery = failed_delivery(alice)
    call_command("reconcile", stdout=io.StringIO(), stderr=io.StringIO())
    usd.refresh_from_db()
    return {"usd": usd, "eur": eur, "program": program, "frozen": frozen, "delivery": delivery}


@pytest.mark.parametrize("group", ["Finance", "Support"])
def test_finance_and_support_see_every_figure_with_links_to_its_pages(group, back_office_day):
    body = page(logged_in(staff_in(group)))
    usd, eur = back_office_day["usd"], back_office_day["eur"]

    # Money per currency: total, held by the hold, available; every balance, the funding ones included.
    holdings = text(section(body, "dashboard-holdings"))
    usd_balances = WalletBalance.objects.filter(currency_id="USD")
    total_usd = sum(usd_balances.values_list("amount", flat=True))
    assert total_usd == Decimal("1290.00")
    assert f"USD {usd_balances.count()} 1,290.00 100.00 1,190.00" in holdings
    assert "EUR 2 65.10 0.00 65.10" in holdings  # 80.00 − 20.00 + 5.00, and the funding balance's 0.10

    # The chart: one bar a day for 30 days, today's counting each movement once.
    chart = section(body, "dashboard-movements")
    assert chart.count('class="chart-day') == 30
    today = timezone.now().astimezone(UTC).date()
    # Deposits (3 USD/EUR balances, the funding one), the transfer once, the payment, its refund.
    assert f'data-day="{today}" data-total="7"' in chart
    assert "<svg" in chart and "<title>" in chart

    # Largest balances, each linked to its page.
    largest = section(body, "dashboard-largest")
    assert reverse("admin:wallets_walletbalance_change", args=[usd.pk]) in largest
    assert reverse("admin:wallets_walletbalance_change", args=[eur.pk]) in largest
    assert "alice@example.com" in largest

    # Frozen wallets, linked; and the tiles that lead to what needs attention.
    frozen = back_office_day["frozen"]
    assert reverse("admin:wallets_wallet_change", args=[frozen.pk]) in section(body, "dashboard-frozen")
    assert text(section(body, "tile-frozen")).startswith("Frozen wallets 1")
    webhooks = section(body, "tile-webhooks")
    assert reverse("admin:events_webhookdelivery_changelist") + "?status__exact=failed" in webhooks
    assert "Failed webhook deliveries 1" in text(webhooks)
    assert "Webhook endpoints disabled 1" in text(section(body, "tile-endpoints"))
    assert "Unfunded cashback 1" in text(section(body, "tile-loyalty"))
    program = back_office_day["program"]
    unfunded = section(body, "dashboard-unfunded")
    assert reverse("admin:loyalty_loyaltyprogram_change", args=[program.pk]) in unfunded
    assert "1.00" in text(unfunded) and "0.10" in text(unfunded)
    reconcile = section(body, "tile-reconcile")
    assert "Last reconcile OK" in text(reconcile)
    assert "OK: every invariant holds" in section(body, "dashboard-reconcile")

    # Finance may top up the funding balance from here; Support may not, and is not offered it.
    top_up = reverse("admin:wallets_walletbalance_adjust", args=[program.funding_balance_id])
    assert (top_up in unfunded) is (group == "Finance")

    # The list of every section is still on the page.
    assert reverse("admin:transactions_transaction_changelist") in section(body, "all-sections")


def test_a_staff_member_sees_only_the_sections_they_may_view_and_nothing_else_is_read(back_office_day):
    wallets_only = UserFactory(is_staff=True)
    wallets_only.user_permissions.add(Permission.objects.get(codename="view_wallet", content_type__app_label="wallets"))
    client = logged_in(wallets_only)

    with CaptureQueriesContext(connection) as queries:
        body = page(client)

    assert 'id="dashboard-frozen"' in body
    for hidden in (
        "dashboard-holdings",
        "dashboard-movements",
        "dashboard-largest",
        "dashboard-unfunded",
        "tile-webhooks",
        "tile-loyalty",
        "tile-reconcile",
    ):
        assert f'id="{hidden}"' not in body
    assert "1,200.00" not in body and 'id="movements-chart"' not in body
    read = " ".join(query["sql"] for query in queries.captured_queries)
    for table in ("transactions_transaction", "wallets_walletbalance", "events_webhookdelivery", "loyalty_"):
        assert table not in read


def test_links_lead_only_to_pages_the_staff_member_may_open(back_office_day):
    programmes_only = UserFactory(is_staff=True)
    programmes_only.user_permissions.add(
        Permission.objects.get(codename="view_loyaltyprogram", content_type__app_label="loyalty")
    )

    body = page(logged_in(programmes_only))

    program = back_office_day["program"]
    assert reverse("admin:loyalty_loyaltyprogram_change", args=[program.pk]) in section(body, "dashboard-unfunded")
    assert f'href="{reverse("admin:loyalty_loyaltyprogram_changelist")}"' in section(body, "tile-loyalty")
    assert reverse("admin:loyalty_reward_changelist") not in body
    assert reverse("admin:wallets_walletbalance_adjust", args=[program.funding_balance_id]) not in body


def test_a_staff_member_without_any_view_permission_sees_no_figure():
    body = page(logged_in(UserFactory(is_staff=True)))

    assert 'id="dashboard"' not in body
    assert "permission to view or edit anything" in body


def test_the_admins_second_step_comes_before_the_dashboard(settings, back_office_day):
    """The dashboard is the admin site's own index: a session that owes its second factor reads no figure."""
    settings.ADMIN_REQUIRE_MFA = True
    client = logged_in(staff_in("Finance"))

    with CaptureQueriesContext(connection) as queries:
        response = client.get(INDEX)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("admin:mfa_enrol"))
    assert not any("transactions_transaction" in query["sql"] for query in queries.captured_queries)


def test_the_page_runs_the_same_number_of_queries_for_a_small_and_a_larger_back_office(settings, support):
    settings.BACKOFFICE_DASHBOARD_CACHE_SECONDS = 0  # every figure read on each visit
    small = funded_balance(amount="10.00")
    support.get(INDEX)  # warm the content-type and permission caches
    cache.clear()
    few = round_trips(support, INDEX)

    for index in range(12):
        balance = funded_balance(amount=f"{index + 5}.00")
        pay(balance, "1.00")
        transfer_create(
            from_wallet_balance_id=balance.pk,
            to_wallet_balance_id=small.pk,
            amount=Decimal("1.00"),
            owner=None,
            created_by=None,
        )
        wallet_set_frozen(wallet_id=balance.wallet_id, frozen=index % 2 == 0)
    program_in("USD", funding="0.00", name="Unfunded")
    pay(small, "20.00")
    book_all()
    call_command("reconcile", stdout=io.StringIO(), stderr=io.StringIO())
    cache.clear()  # the chart's settled days are kept whatever the setting

    assert round_trips(support, INDEX) == few


def test_whole_table_figures_are_kept_for_a_short_time_and_shared(settings, support, finance):
    settings.BACKOFFICE_DASHBOARD_CACHE_SECONDS = 60
    balance = funded_balance(amount="10.00")
    assert "10.00" in text(section(page(support), "dashboard-holdings"))

    pay(balance, "3.00")

    # Kept, for whoever looks next: the money and today's bar still show what was read.
    later = page(finance)
    assert "10.00" in text(section(later, "dashboard-holdings"))
    today = timezone.now().astimezone(UTC).date()
    assert f'data-day="{today}" data-total="1"' in section(later, "dashboard-movements")

    settings.BACKOFFICE_DASHBOARD_CACHE_SECONDS = 0
    cache.clear()
    fresh = page(finance)
    assert "7.00" in text(section(fresh, "dashboard-holdings"))
    assert f'data-day="{today}" data-total="2"' in section(fresh, "dashboard-movements")


def test_without_the_cache_every_figure_is_read_from_the_database(settings, support):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
        }
    }
    funded_balance(amount="12.34")

    body = page(support)

    assert "12.34" in text(section(body, "dashboard-holdings"))
    assert 'class="chart-day' in section(body, "dashboard-movements")


def test_reconcile_never_run_and_overdue_are_said_on_its_tile(support):
    assert "Last reconcile Never run" in text(section(page(support), "tile-reconcile"))


def test_an_old_reconcile_is_shown_overdue(support):
    long_ago = timezone.now() - timedelta(days=3)
    ReconcileRun.objects.create(started_at=long_ago, finished_at=long_ago, ok=True, summary="Reconciled 0 balances")

    tile = text(section(page(support), "tile-reconcile"))

    assert "Last reconcile OK" in tile and "overdue" in tile


def test_a_frozen_wallet_list_says_how_many_more_there_are(support):
    for index in range(12):
        wallet = WalletFactory(name=f"Frozen {index:02}")
        wallet_set_frozen(wallet_id=wallet.pk, frozen=True)
    newest = Wallet.objects.filter(is_frozen=True).order_by("-created_at", "-id")[0]

    frozen = section(page(support), "dashboard-frozen")

    assert frozen.count(reverse("admin:wallets_wallet_change", args=[newest.pk])) == 1
    assert frozen.count("/admin/wallets/wallet/") - frozen.count("changelist") >= 10
    assert "The 10 newest of 12" in text(frozen)


def _entry_on(moment: datetime, like: Transaction, sequence: int) -> None:
    """A copy of `like` stamped at `moment`, with an id of that time, as the ledger would have written it then.

    The ledger's triggers refuse a row out of its chain; the test lifts them for its own insert (rolled back
    with the test).
    """
    entry_id = UUID(int=uuid7_floor(moment).int | (0x7 << 76) | (0b10 << 62) | sequence)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE transactions_transaction DISABLE TRIGGER USER")
        try:
            cursor.execute(
                "INSERT INTO transactions_transaction (id, type, amount, balance_after, sequence, reference, source,"
                " description, merchant, created_at, currency_id, owner_id, wallet_id, wallet_balance_id)"
                " SELECT %s, type, amount, balance_after, %s, gen_random_uuid(), source, '', '', %s, currency_id,"
                " owner_id, wallet_id, wallet_balance_id FROM transactions_transaction WHERE id = %s",
                [entry_id, sequence, moment, like.pk],
            )
        finally:
            cursor.execute("ALTER TABLE transactions_transaction ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_the_chart_puts_each_movement_on_its_utc_day_and_leaves_out_older_ones(support):
    balance = funded_balance(amount="100.00")
    deposit = balance.entries.get()
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=29)
    _entry_on(first_day + timedelta(seconds=1), deposit, 101)  # the chart's first day
    _entry_on(first_day - timedelta(seconds=1), deposit, 102)  # the day before: not on the chart
    _entry_on(today - timedelta(days=3) + timedelta(hours=12), deposit, 103)
    _entry_on(today - timedelta(days=3) + timedelta(hours=13), deposit, 104)

    chart = section(page(support), "dashboard-movements")

    totals = dict(re.findall(r'data-day="([\d-]+)" data-total="(\d+)"', chart))
    assert len(totals) == 30
    assert totals[str(first_day.date())] == "1"
    assert totals[str((today - timedelta(days=3)).date())] == "2"
    assert totals[str(today.date())] == "1"
    assert sum(int(value) for value in totals.values()) == 4
    assert "4 movements in 30 days" in text(chart)


def test_a_day_that_has_ended_is_read_once_and_kept_while_today_is_read_again(settings, support):
    settings.BACKOFFICE_DASHBOARD_CACHE_SECONDS = 0
    balance = funded_balance(amount="100.00")
    deposit = balance.entries.get()
    three_days_ago = timezone.now().astimezone(UTC).replace(hour=12, minute=0, second=0) - timedelta(days=3)
    _entry_on(three_days_ago, deposit, 201)
    day = str(three_days_ago.date())
    today = str(timezone.now().astimezone(UTC).date())
    first = dict(re.findall(r'data-day="([\d-]+)" data-total="(\d+)"', section(page(support), "dashboard-movements")))

    _entry_on(three_days_ago + timedelta(minutes=1), deposit, 202)  # cannot happen: that day is over
    pay(balance, "1.00")

    second = dict(re.findall(r'data-day="([\d-]+)" data-total="(\d+)"', section(page(support), "dashboard-movements")))
    assert (first[day], first[today]) == ("1", "1")
    assert (second[day], second[today]) == ("1", "2")
