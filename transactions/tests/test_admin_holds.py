"""Holds in the admin: read-only lists filtered by the status as of now, a void through the service with a reason,
and what balances hold and have available."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from conftest import held_in_redis
from tests.admin_support import confirm, logged_in, post_and_confirm, review, round_trips, staff_in
from tests.factories import UserFactory, funded_balance
from tests.holds import backdate
from transactions.holds.selectors import HELD_NOW, balances_with_held_now, held_now
from transactions.holds.services import hold_capture, hold_create, hold_void
from transactions.models import Hold, HoldStatus, Transaction, TransactionType
from wallets.models import StaffAction, WalletBalance
from wallets.services import wallet_set_frozen

pytestmark = pytest.mark.django_db

HOLDS = reverse("admin:transactions_hold_changelist")
BALANCES = reverse("admin:wallets_walletbalance_changelist")
QUERY_BOUND = 20
HOUR = 3600


def hold_url(hold: Hold) -> str:
    return reverse("admin:transactions_hold_change", args=[hold.pk])


def void_url(hold: Hold) -> str:
    return reverse("admin:transactions_hold_void", args=[hold.pk])


def balance_url(balance: WalletBalance) -> str:
    return reverse("admin:wallets_walletbalance_change", args=[balance.pk])


def place(balance: WalletBalance, amount: str = "30.00", *, expires_in: int = 24 * HOUR, merchant: str = "") -> Hold:
    return hold_create(
        wallet_balance_id=balance.pk,
        amount=Decimal(amount),
        owner=None,
        created_by=None,
        merchant=merchant,
        expires_in=expires_in,
    )


def listed(response) -> set[Hold]:
    assert response.status_code == HTTPStatus.OK
    return set(response.context["cl"].result_list)


def held(balance: WalletBalance) -> Decimal:
    balance.refresh_from_db()
    return balance.held_amount


@pytest.fixture
def holds_of_every_status() -> dict[str, Hold]:
    """One hold per status as of now, plus an active hold past its expiry that nothing has swept."""
    balance = funded_balance(amount="500.00")
    captured = place(balance, "10.00")
    hold_capture(hold_id=captured.pk, amount=Decimal("4.00"), owner=None, created_by=None)
    voided = place(balance, "20.00")
    hold_void(hold_id=voided.pk, owner=None, created_by=None)
    unswept = place(balance, "40.00", expires_in=HOUR)
    backdate(unswept, HOUR + 1)
    return {
        "active": place(balance, "30.00"),
        "captured": Hold.objects.get(pk=captured.pk),
        "voided": Hold.objects.get(pk=voided.pk),
        "unswept": unswept,
    }


# --- reading ------------------------------------------------------------------------------------


def test_support_lists_holds_with_amounts_and_the_status_as_of_now(support, holds_of_every_status):
    unswept = holds_of_every_status["unswept"]
    assert unswept.status == HoldStatus.ACTIVE  # stored; past its expiry all the same

    body = support.get(HOLDS).content.decode()

    assert unswept.owner.email in body
    assert ">40.00\u00a0USD<" in body and ">30.00\u00a0USD<" in body and ">4.00\u00a0USD<" in body
    assert body.count('class="hold-status hold-active"') == 1
    assert body.count('class="hold-status hold-expired"') == 1
    assert body.count('class="hold-status hold-captured"') == 1
    assert body.count('class="hold-status hold-voided"') == 1
    # Nothing remains of the three holds that are not active now; three were never captured.
    assert body.count(">0.00\u00a0USD<") == 3 + 3


@pytest.mark.parametrize(
    ("status", "expected"),
    [("active", {"active"}), ("expired", {"unswept"}), ("captured", {"captured"}), ("voided", {"voided"})],
)
def test_status_filter_reads_the_status_as_of_now(support, holds_of_every_status, status, expected):
    response = support.get(HOLDS, {"status": status})

    assert listed(response) == {holds_of_every_status[name] for name in expected}


def test_expired_filter_finds_swept_and_unswept_holds_alike(support, holds_of_every_status):
    balance = funded_balance(amount="50.00")
    swept = place(balance, "5.00", expires_in=HOUR)
    backdate(swept, HOUR + 1)
    place(balance, "1.00")  # a posting on the balance releases its expired holds first
    assert Hold.objects.get(pk=swept.pk).status == HoldStatus.EXPIRED

    response = support.get(HOLDS, {"status": "expired"})

    assert listed(response) == {holds_of_every_status["unswept"], Hold.objects.get(pk=swept.pk)}


def test_currency_filter(support):
    usd = place(funded_balance(amount="50.00"), "5.00")
    place(funded_balance(currency="EUR", amount="50.00"), "5.00")

    response = support.get(HOLDS, {"currency__code__exact": "USD"})

    assert listed(response) == {usd}


def test_expiring_soon_lists_active_holds_within_the_window_only(support, holds_of_every_status):
    balance = funded_balance(amount="100.00")
    within_an_hour = place(balance, "1.00", expires_in=HOUR // 2)
    within_two_days = place(balance, "1.00", expires_in=48 * HOUR)
    place(balance, "1.00", expires_in=10 * 24 * HOUR)

    hour = support.get(HOLDS, {"expiring_within": "1h"})
    week = support.get(HOLDS, {"expiring_within": "7d"})

    # The captured and voided holds expire within a day too, but reserve nothing: not listed.
    assert listed(hour) == {within_an_hour}
    assert listed(week) == {within_an_hour, within_two_days, holds_of_every_status["active"]}


def test_search_finds_holds_by_id_reference_balance_owner_email_and_merchant(support):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "5.00", merchant="Harbour Hotel")
    other = place(funded_balance(amount="100.00"), "5.00", merchant="Bookshop")

    for term in (str(hold.pk), str(hold.reference), str(balance.pk), balance.wallet.owner.email, "harbour"):
        assert listed(support.get(HOLDS, {"q": term})) == {hold}, term
    assert listed(support.get(HOLDS, {"q": "not-a-uuid"})) == set()
    assert other in listed(support.get(HOLDS))


def test_hold_page_shows_its_captures_linked_to_the_ledger_and_its_staff_actions(support):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00", merchant="Harbour Hotel")
    first = hold_capture(hold_id=hold.pk, amount=Decimal("10.00"), final=False, owner=None, created_by=None).entry
    post_and_confirm(support, void_url(hold), {"reason": "Guest checked out early, ticket 9"})

    body = support.get(hold_url(hold)).content.decode()

    assert reverse("admin:transactions_transaction_change", args=[first.pk]) in body
    assert "Capture 10.00\u00a0USD" in body
    assert f"{reverse('admin:transactions_transaction_changelist')}?reference={hold.reference}" in body
    staff_action = StaffAction.objects.get()
    assert reverse("admin:wallets_staffaction_change", args=[staff_action.pk]) in body
    assert "Guest checked out early, ticket 9" in body
    assert reverse("admin:wallets_walletbalance_change", args=[balance.pk]) in body
    assert 'class="hold-status hold-voided"' in body


def test_a_hold_past_its_expiry_reads_expired_with_nothing_remaining_and_no_void_button(root):
    hold = place(funded_balance(amount="100.00"), "30.00", expires_in=HOUR)
    backdate(hold, HOUR + 1)

    body = root.get(hold_url(hold)).content.decode()

    assert 'class="hold-status hold-expired"' in body
    assert 'id="past-expiry"' in body
    assert ">0.00\u00a0USD<" in body
    assert void_url(hold) not in body


# --- nobody edits a hold --------------------------------------------------------------------------


def test_superuser_cannot_add_change_or_delete_a_hold(root):
    hold = place(funded_balance(amount="100.00"), "30.00")

    add = root.get(reverse("admin:transactions_hold_add"))
    change = root.post(hold_url(hold), {"amount": "1.00", "status": "voided"})
    delete = root.post(reverse("admin:transactions_hold_delete", args=[hold.pk]), {"post": "yes"})
    page = root.get(hold_url(hold)).content.decode()
    changelist = root.get(HOLDS).content.decode()

    assert add.status_code == change.status_code == delete.status_code == HTTPStatus.FORBIDDEN
    assert 'name="_save"' not in page and 'name="amount"' not in page
    assert "delete_selected" not in changelist
    hold.refresh_from_db()
    assert (hold.amount, hold.status) == (Decimal("30.00"), HoldStatus.ACTIVE)


# --- voiding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["Support", "Finance"])
def test_support_and_finance_void_a_hold_with_a_reason_that_goes_to_the_history(
    group, caplog, django_capture_on_commit_callbacks
):
    staff = staff_in(group)
    client = logged_in(staff)
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    hold_capture(hold_id=hold.pk, amount=Decimal("10.00"), final=False, owner=None, created_by=None)
    assert held(balance) == Decimal("20.00")

    page = client.get(hold_url(hold)).content.decode()
    with caplog.at_level("INFO", logger="wallet.audit"), django_capture_on_commit_callbacks(execute=True):
        response = post_and_confirm(client, void_url(hold), {"reason": "Merchant asked, ticket 12"})

    assert void_url(hold) in page
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == hold_url(hold)
    hold.refresh_from_db()
    assert hold.status == HoldStatus.VOIDED and hold.resolved_at is not None
    assert held(balance) == Decimal(0)
    assert balance.amount == Decimal("90.00")  # the capture moved money; the void moved none
    assert Transaction.objects.filter(type=TransactionType.CAPTURE).count() == 1
    staff_action = StaffAction.objects.get()
    assert (staff_action.staff, staff_action.action, staff_action.reason, staff_action.target_id) == (
        staff,
        StaffAction.Action.HOLD_VOIDED,
        "Merchant asked, ticket 12",
        str(hold.pk),
    )
    assert staff_action.details == {
        "hold_id": str(hold.pk),
        "wallet_balance_id": str(balance.pk),
        "amount": "30.00",
        "captured_amount": "10.00",
        "released": "20.00",
        "currency": "USD",
    }
    log = LogEntry.objects.get(user=staff, object_id=str(hold.pk))
    assert log.get_change_message() == (
        f"Voided hold {hold.pk}: released 20.00\u00a0USD on balance {balance.wallet.name} · USD. "
        "Reason: Merchant asked, ticket 12"
    )
    audit = {line.getMessage(): line for line in caplog.records}
    assert audit["hold voided"].created_by == str(staff.pk)
    assert audit["staff action"].reason == "Merchant asked, ticket 12"


def test_superuser_voids_a_hold(root):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")

    response = post_and_confirm(root, void_url(hold), {"reason": "Goodwill"})

    assert response.status_code == HTTPStatus.FOUND
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.VOIDED
    assert held(balance) == Decimal(0)


def test_a_hold_on_a_frozen_wallet_can_still_be_voided(support):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=True)

    reviewed = review(support, void_url(hold), {"reason": "Account closed"})
    response = confirm(support, void_url(hold), reviewed)

    assert 'id="frozen-note"' in reviewed.content.decode()
    assert response.status_code == HTTPStatus.FOUND
    assert held(balance) == Decimal(0)


def test_void_review_shows_what_is_released_and_changes_nothing(finance):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")

    reviewed = review(finance, void_url(hold), {"reason": "Duplicate hold"})

    body = reviewed.content.decode()
    assert 'id="released-amount"><strong>30.00\u00a0USD' in body
    assert "Duplicate hold" in body
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.ACTIVE
    assert held(balance) == Decimal("30.00")
    assert not StaffAction.objects.exists()


def test_void_requires_a_reason(finance):
    hold = place(funded_balance(amount="100.00"), "30.00")

    response = finance.post(void_url(hold), {"reason": "   ", "seen": "30.00", "confirm": "yes"})

    assert response.status_code == HTTPStatus.OK
    assert list(response.context["form"].errors) == ["reason"]
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.ACTIVE
    assert not StaffAction.objects.exists()


def test_staff_without_the_permission_cannot_void_or_see_the_hold():
    staff = UserFactory(is_staff=True)
    client = logged_in(staff)
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")

    form = client.get(void_url(hold))
    post = client.post(void_url(hold), {"reason": "No", "seen": "30.00", "confirm": "yes"})

    assert form.status_code == post.status_code == HTTPStatus.FORBIDDEN
    assert client.get(hold_url(hold)).status_code == HTTPStatus.FORBIDDEN  # not even a view permission
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.ACTIVE
    assert held(balance) == Decimal("30.00")
    assert not StaffAction.objects.exists()


def test_void_of_a_resolved_hold_shows_an_error_and_changes_nothing(finance):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    hold_capture(hold_id=hold.pk, amount=Decimal("12.00"), owner=None, created_by=None)
    before = Hold.objects.get(pk=hold.pk)

    page = finance.get(hold_url(hold)).content.decode()
    form = finance.get(void_url(hold))
    post = finance.post(void_url(hold), {"reason": "Again", "seen": "18.00", "confirm": "yes"})

    assert void_url(hold) not in page
    assert form.status_code == post.status_code == HTTPStatus.OK
    assert 'id="hold-resolved"' in post.content.decode() and "is captured" in post.content.decode()
    assert "<form" not in post.content.decode().split('id="content-main"')[1]
    after = Hold.objects.get(pk=hold.pk)
    assert (after.status, after.resolved_at, after.captured_amount) == (
        HoldStatus.CAPTURED,
        before.resolved_at,
        Decimal("12.00"),
    )
    assert held(balance) == Decimal(0)
    assert not StaffAction.objects.exists()


def test_a_hold_voided_between_review_and_confirmation_is_an_error_not_a_second_void(finance):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    reviewed = review(finance, void_url(hold), {"reason": "Duplicate hold"})
    hold_void(hold_id=hold.pk, owner=None, created_by=None)

    response = confirm(finance, void_url(hold), reviewed)

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert 'id="hold-resolved"' in body and "This hold is voided" in body
    assert not StaffAction.objects.exists()
    assert not LogEntry.objects.exists()


def test_a_hold_captured_in_part_between_review_and_confirmation_is_shown_again_with_what_remains(finance):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    reviewed = review(finance, void_url(hold), {"reason": "Duplicate hold"})
    hold_capture(hold_id=hold.pk, amount=Decimal("10.00"), final=False, owner=None, created_by=None)

    again = confirm(finance, void_url(hold), reviewed)

    assert again.status_code == HTTPStatus.OK and again.context["notice"]
    assert 'id="released-amount"><strong>20.00\u00a0USD' in again.content.decode()
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.ACTIVE
    assert not StaffAction.objects.exists()

    done = confirm(finance, void_url(hold), again)

    assert done.status_code == HTTPStatus.FOUND
    assert StaffAction.objects.get().details["released"] == "20.00"
    assert held(balance) == Decimal(0)


def test_void_of_a_hold_past_its_expiry_is_refused_as_expired(finance):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00", expires_in=HOUR)
    backdate(hold, HOUR + 1)

    response = finance.post(void_url(hold), {"reason": "Late", "seen": "30.00", "confirm": "yes"})

    assert response.status_code == HTTPStatus.OK
    assert "This hold is expired" in response.content.decode()
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.ACTIVE  # nothing written by the admin
    assert not StaffAction.objects.exists()


def test_a_busy_balance_is_an_error_on_the_page_not_a_crash(finance, short_lock_wait):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    reviewed = review(finance, void_url(hold), {"reason": "Duplicate hold"})

    with held_in_redis(balance.pk):
        response = confirm(finance, void_url(hold), reviewed)

    assert response.status_code == HTTPStatus.OK
    assert 'id="form-errors"' in response.content.decode()
    assert Hold.objects.get(pk=hold.pk).status == HoldStatus.ACTIVE
    assert held(balance) == Decimal("30.00")
    assert not StaffAction.objects.exists()


def test_staff_action_history_links_to_the_voided_hold(finance):
    hold = place(funded_balance(amount="100.00"), "30.00")
    post_and_confirm(finance, void_url(hold), {"reason": "Duplicate hold"})

    body = finance.get(reverse("admin:wallets_staffaction_changelist")).content.decode()

    assert hold_url(hold) in body and "Hold voided" in body


# --- balances: held and available -----------------------------------------------------------------------


def test_balance_page_and_list_show_held_and_available_as_of_now_and_link_to_the_holds(support):
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00")
    unswept = place(balance, "25.00", expires_in=HOUR)
    backdate(unswept, HOUR + 1)
    assert held(balance) == Decimal("55.00")  # stored: the expired hold is not released yet

    page = support.get(balance_url(balance)).content.decode()
    changelist = support.get(BALANCES)
    holds = support.get(HOLDS, {"wallet_balance": str(balance.pk)})

    assert '<div class="readonly">30.00</div>' in page
    assert '<div class="readonly">70.00</div>' in page
    assert f"{HOLDS}?wallet_balance={balance.pk}" in page
    row = changelist.content.decode()
    assert '<td class="field-held_display">30.00</td>' in row
    assert '<td class="field-available_display">70.00</td>' in row
    assert listed(holds) == {hold, unswept}


def test_balances_with_held_now_agrees_with_held_now():
    quiet = funded_balance(amount="10.00")
    live = funded_balance(amount="100.00")
    place(live, "30.00")
    due = funded_balance(amount="100.00")
    place(due, "20.00")
    backdate(place(due, "25.00", expires_in=HOUR), HOUR + 1)
    all_due = funded_balance(amount="100.00")
    backdate(place(all_due, "40.00", expires_in=HOUR), HOUR + 1)

    balances = WalletBalance.objects.filter(pk__in=[quiet.pk, live.pk, due.pk, all_due.pk])

    annotated = {balance.pk: getattr(balance, HELD_NOW) for balance in balances_with_held_now(balances)}

    assert annotated == {
        balance.pk: held_now(WalletBalance.objects.get(pk=balance.pk)) for balance in (quiet, live, due, all_due)
    }
    assert annotated == {quiet.pk: 0, live.pk: Decimal("30.00"), due.pk: Decimal("20.00"), all_due.pk: 0}


def test_withdrawal_adjustment_is_refused_beyond_what_is_available(finance):
    balance = funded_balance(amount="100.00")
    place(balance, "30.00")
    adjust_url = reverse("admin:wallets_walletbalance_adjust", args=[balance.pk])

    form = finance.get(adjust_url).content.decode()
    response = finance.post(adjust_url, {"direction": "withdrawal", "amount": "80.00", "reason": "Chargeback"})

    assert 'id="available-amount">70.00 USD' in form
    assert "of which 30.00 USD is reserved by holds (70.00 USD available)" in response.content.decode()
    assert balance.entries.count() == 1


# --- query counts -----------------------------------------------------------------------------------------


def test_holds_changelist_runs_the_same_number_of_queries_for_3_and_30_holds(support, django_assert_max_num_queries):
    balance = funded_balance(amount="1000.00")
    for _ in range(3):
        place(balance, "1.00")
    support.get(HOLDS)

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, HOLDS)
    for _ in range(27):
        place(funded_balance(amount="10.00"), "1.00")
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, HOLDS)

    assert Hold.objects.count() == 30
    assert many == few


def test_balance_changelist_does_not_query_per_balance_with_a_hold_due(support, django_assert_max_num_queries):
    def due_balance() -> None:
        balance = funded_balance(amount="10.00")
        backdate(place(balance, "1.00", expires_in=HOUR), HOUR + 1)

    due_balance()
    support.get(BALANCES)
    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, BALANCES)
    for _ in range(10):
        due_balance()
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, BALANCES)

    assert many == few


def test_hold_and_void_pages_run_a_bounded_number_of_queries(finance, django_assert_max_num_queries):
    hold = place(funded_balance(amount="100.00"), "30.00")
    for _ in range(5):
        hold_capture(hold_id=hold.pk, amount=Decimal("1.00"), final=False, owner=None, created_by=None)
    finance.get(hold_url(hold))

    with django_assert_max_num_queries(QUERY_BOUND):
        page = finance.get(hold_url(hold))
    with django_assert_max_num_queries(QUERY_BOUND):
        form = finance.get(void_url(hold))

    assert page.status_code == form.status_code == HTTPStatus.OK
    assert page.content.decode().count("Capture 1.00\u00a0USD") == 5
