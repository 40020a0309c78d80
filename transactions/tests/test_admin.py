"""The ledger in the admin: read-only for everyone, refunds through the service, a streaming CSV export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.sites import site
from django.http import StreamingHttpResponse
from django.test import RequestFactory
from django.urls import reverse

from tests.admin_support import confirm, post_and_confirm, review, round_trips, superuser
from tests.factories import funded_balance
from transactions.admin import TransactionAdmin
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.services import deposit_create, payment_create, refund_create, transfer_create
from wallets.models import StaffAction, Wallet

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:transactions_transaction_changelist")
# The same bound for 3 rows and for 30: no query per row.
QUERY_BOUND = 20


def change_url(entry: Transaction) -> str:
    return reverse("admin:transactions_transaction_change", args=[entry.pk])


def refund_url(entry: Transaction) -> str:
    return reverse("admin:transactions_transaction_refund", args=[entry.pk])


def pay(balance, amount: str = "40.00", merchant: str = "Coffee Shop") -> Transaction:
    return payment_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), merchant=merchant, owner=None, created_by=None
    )


def deposits(balance, count: int) -> None:
    for _ in range(count):
        deposit_create(wallet_balance_id=balance.pk, amount=Decimal("1.50"), owner=None, created_by=None)


# --- reading ------------------------------------------------------------------------------


def test_support_reads_the_ledger_with_amounts_in_the_currency_minor_unit(support):
    usd = funded_balance(amount="12.5")
    jpy = funded_balance(currency="JPY", amount="1000")
    kwd = funded_balance(currency="KWD", amount="1.25")

    response = support.get(CHANGELIST)

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert ">12.50\u00a0USD<" in body
    assert ">1000\u00a0JPY<" in body
    assert ">1.250\u00a0KWD<" in body
    assert usd.wallet.owner.email in body and jpy.wallet.owner.email in body and kwd.wallet.owner.email in body


def test_changelist_filters_by_type_source_and_currency(support):
    balance = funded_balance(amount="100.00")
    payment = pay(balance)

    response = support.get(
        CHANGELIST, {"type__exact": "PAYMENT", "source__exact": "API", "currency__code__exact": "USD"}
    )

    assert response.status_code == HTTPStatus.OK
    assert list(response.context["cl"].result_list) == [payment]


def test_search_finds_entries_by_owner_email_entry_id_reference_and_merchant(support):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, merchant="Bookshop Ltd")
    other = funded_balance(amount="5.00")

    by_email = support.get(CHANGELIST, {"q": balance.wallet.owner.email})
    by_id = support.get(CHANGELIST, {"q": str(payment.pk)})
    by_reference = support.get(CHANGELIST, {"q": str(payment.reference)})
    by_merchant = support.get(CHANGELIST, {"q": "bookshop"})
    by_junk = support.get(CHANGELIST, {"q": "not-a-uuid"})

    assert set(by_email.context["cl"].result_list) == set(balance.entries.all())
    assert list(by_id.context["cl"].result_list) == [payment]
    assert list(by_reference.context["cl"].result_list) == [payment]
    assert list(by_merchant.context["cl"].result_list) == [payment]
    assert by_junk.status_code == HTTPStatus.OK
    assert not other.entries.filter(pk__in=[row.pk for row in by_email.context["cl"].result_list]).exists()


def test_transfer_entry_links_to_its_balance_wallet_owner_and_the_other_leg(support):
    source = funded_balance(amount="100.00")
    destination = funded_balance(amount="0")
    out_leg = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("30.00"),
        owner=None,
        created_by=None,
    )
    in_leg = Transaction.objects.get(reference=out_leg.reference, type=TransactionType.TRANSFER_IN)

    body = support.get(change_url(out_leg)).content.decode()

    assert reverse("admin:wallets_walletbalance_change", args=[source.pk]) in body
    assert reverse("admin:wallets_wallet_change", args=[source.wallet_id]) in body
    assert reverse("admin:accounts_user_change", args=[source.wallet.owner_id]) in body
    assert change_url(in_leg) in body
    assert f"{CHANGELIST}?reference={out_leg.reference}" in body


def test_changelist_filtered_by_reference_lists_both_legs(support):
    source = funded_balance(amount="100.00")
    destination = funded_balance(amount="0")
    out_leg = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("30.00"),
        owner=None,
        created_by=None,
    )

    response = support.get(CHANGELIST, {"reference": str(out_leg.reference)})

    assert response.status_code == HTTPStatus.OK
    assert {entry.type for entry in response.context["cl"].result_list} == {"TRANSFER_OUT", "TRANSFER_IN"}


# --- nobody edits the ledger -------------------------------------------------------------


def test_superuser_cannot_add_change_or_delete_a_ledger_entry(root):
    balance = funded_balance(amount="100.00")
    entry = balance.entries.get()

    add = root.get(reverse("admin:transactions_transaction_add"))
    change = root.post(change_url(entry), {"amount": "1000.00", "description": "typed by hand"})
    delete = root.post(reverse("admin:transactions_transaction_delete", args=[entry.pk]), {"post": "yes"})
    bulk_delete = root.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [str(entry.pk)], "post": "yes"}
    )

    assert add.status_code == HTTPStatus.FORBIDDEN
    assert change.status_code == HTTPStatus.FORBIDDEN
    assert delete.status_code == HTTPStatus.FORBIDDEN
    assert bulk_delete.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)  # "No action selected."
    entry.refresh_from_db()
    assert entry.amount == Decimal("100.00")
    assert entry.description == ""
    assert Transaction.objects.filter(pk=entry.pk).exists()


def test_superuser_sees_the_entry_page_read_only(root):
    entry = funded_balance(amount="100.00").entries.get()

    response = root.get(change_url(entry))

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert 'name="_save"' not in body
    assert 'name="amount"' not in body
    assert "delete_selected" not in root.get(CHANGELIST).content.decode()


# --- refunds -------------------------------------------------------------------------------


def test_finance_refunds_a_payment_in_full_with_source_admin_and_its_own_name(finance, finance_user):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, "40.00")

    page = finance.get(change_url(payment))
    form = finance.get(refund_url(payment))
    response = post_and_confirm(finance, refund_url(payment), {"amount": "40.00", "reason": "Goods returned"})

    assert refund_url(payment) in page.content.decode()
    assert form.context["form"]["amount"].value() == "40.00"  # what is left, filled in, not implied by a blank
    refund = Transaction.objects.get(type=TransactionType.REFUND)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == change_url(refund)
    assert refund.amount == Decimal("40.00")
    assert refund.reference == payment.reference
    assert refund.source == TransactionSource.ADMIN
    assert refund.created_by == finance_user
    assert refund.description == "Goods returned"
    balance.refresh_from_db()
    assert balance.amount == Decimal("100.00")
    log = LogEntry.objects.get(user=finance_user, object_id=str(payment.pk))
    assert log.get_change_message() == f"Refunded 40.00 USD of payment {payment.pk}. Reason: Goods returned"


def test_finance_refunds_part_of_a_payment_and_is_refused_beyond_what_is_left(finance):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, "40.00")

    partial = post_and_confirm(finance, refund_url(payment), {"amount": "15.00", "reason": "Part returned"})
    too_much = finance.post(refund_url(payment), {"amount": "30.00", "reason": "Rest"})

    assert partial.status_code == HTTPStatus.FOUND
    assert too_much.status_code == HTTPStatus.OK
    assert "25.00 USD is left to refund" in too_much.context["form"].errors["amount"][0]
    assert list(Transaction.objects.filter(type=TransactionType.REFUND).values_list("amount", flat=True)) == [
        Decimal("15.00")
    ]
    balance.refresh_from_db()
    assert balance.amount == Decimal("75.00")


def test_refund_of_a_payment_from_a_frozen_wallet_is_shown_as_an_error_not_a_crash(finance):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, "40.00")
    Wallet.objects.filter(pk=balance.wallet_id).update(is_frozen=True)

    response = finance.post(refund_url(payment), {"amount": "40.00", "reason": "Returned"})

    assert response.status_code == HTTPStatus.OK
    assert "is frozen" in response.content.decode()
    assert 'class="wallet-frozen"' in response.content.decode()
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


def test_refund_of_a_wallet_frozen_between_review_and_confirmation_books_nothing(finance):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, "40.00")
    reviewed = review(finance, refund_url(payment), {"amount": "40.00", "reason": "Returned"})
    Wallet.objects.filter(pk=balance.wallet_id).update(is_frozen=True)

    response = confirm(finance, refund_url(payment), reviewed)

    assert response.status_code == HTTPStatus.OK
    assert "is frozen" in response.content.decode()
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()
    assert not StaffAction.objects.exists()


def test_refund_of_an_entry_that_is_not_a_payment_is_refused(finance):
    deposit = funded_balance(amount="100.00").entries.get()

    page = finance.get(change_url(deposit))
    response = finance.post(refund_url(deposit), {"amount": "1.00", "reason": "No", "seen": "0.00", "confirm": "yes"})

    assert refund_url(deposit) not in page.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "Only payments can be refunded" in response.content.decode()
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


def test_refund_form_refuses_a_malformed_amount(finance):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    response = finance.post(refund_url(payment), {"amount": "-5", "reason": "Returned"})

    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors["amount"]
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


@pytest.mark.parametrize("typed", ["", "1e1", "12,00", "1 2", "١٢", "12.001", "0"])
def test_refund_requires_a_plain_amount_in_the_currency_precision(finance, typed):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    response = finance.post(refund_url(payment), {"amount": typed, "reason": "Returned"})

    assert response.status_code == HTTPStatus.OK
    assert list(response.context["form"].errors) == ["amount"]
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


def test_refund_requires_a_reason(finance):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    response = finance.post(refund_url(payment), {"amount": "40.00", "reason": "   "})

    assert list(response.context["form"].errors) == ["reason"]
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


def test_refund_review_shows_the_amount_and_what_remains_and_books_nothing(finance):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    reviewed = review(finance, refund_url(payment), {"amount": "12.00", "reason": "One item back"})

    body = reviewed.content.decode()
    assert "12.00 USD</strong>" in body
    assert 'id="remaining-amount">28.00 USD' in body
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()
    assert not StaffAction.objects.exists()


def test_refund_records_the_reason_in_the_history_and_the_audit_log(
    finance, finance_user, caplog, django_capture_on_commit_callbacks
):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    with caplog.at_level("INFO", logger="wallet.audit"), django_capture_on_commit_callbacks(execute=True):
        post_and_confirm(finance, refund_url(payment), {"amount": "12.00", "reason": "One item back"})

    refund = Transaction.objects.get(type=TransactionType.REFUND)
    staff_action = StaffAction.objects.get()
    assert (staff_action.staff, staff_action.action, staff_action.reason, staff_action.target_id) == (
        finance_user,
        StaffAction.Action.REFUND,
        "One item back",
        str(payment.pk),
    )
    assert staff_action.details == {
        "payment_id": str(payment.pk),
        "refund_entry_id": str(refund.pk),
        "amount": "12.00",
        "currency": "USD",
        "left_before": "40.00",
        "left_after": "28.00",
    }
    assert [line.reason for line in caplog.records if line.getMessage() == "staff action"] == ["One item back"]


def test_a_payment_refunded_between_review_and_confirmation_is_shown_again_with_what_is_left(finance):
    payment = pay(funded_balance(amount="100.00"), "40.00")
    reviewed = review(finance, refund_url(payment), {"amount": "10.00", "reason": "One item back"})
    refund_create(payment_id=payment.pk, amount=Decimal("5.00"), created_by=None)

    again = confirm(finance, refund_url(payment), reviewed)

    assert again.status_code == HTTPStatus.OK and again.context["notice"]
    assert 'id="remaining-amount">25.00 USD' in again.content.decode()
    assert Transaction.objects.filter(type=TransactionType.REFUND).count() == 1

    done = confirm(finance, refund_url(payment), again)

    assert done.status_code == HTTPStatus.FOUND
    assert sorted(Transaction.objects.filter(type=TransactionType.REFUND).values_list("amount", flat=True)) == [
        Decimal("5.00"),
        Decimal("10.00"),
    ]


def test_a_fully_refunded_payment_has_no_refund_button_and_no_form(finance):
    payment = pay(funded_balance(amount="100.00"), "40.00")
    refund_create(payment_id=payment.pk, amount=None, created_by=None)

    page = finance.get(change_url(payment))
    form = finance.get(refund_url(payment))
    post = finance.post(refund_url(payment), {"amount": "1.00", "reason": "Again", "seen": "40.00", "confirm": "yes"})

    assert refund_url(payment) not in page.content.decode()
    assert (
        'id="nothing-left"' in form.content.decode() and "<form" not in form.content.decode().split("content-main")[1]
    )
    assert post.status_code == HTTPStatus.OK
    assert Transaction.objects.filter(type=TransactionType.REFUND).count() == 1


def test_support_cannot_refund(support):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    page = support.get(change_url(payment))
    form = support.get(refund_url(payment))
    post = support.post(refund_url(payment), {"amount": "40.00", "reason": "No", "seen": "0.00", "confirm": "yes"})

    assert page.status_code == HTTPStatus.OK
    assert refund_url(payment) not in page.content.decode()
    assert form.status_code == HTTPStatus.FORBIDDEN
    assert post.status_code == HTTPStatus.FORBIDDEN
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


def test_superuser_can_refund(root):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    response = post_and_confirm(root, refund_url(payment), {"amount": "10", "reason": "Goodwill"})

    assert response.status_code == HTTPStatus.FOUND
    assert Transaction.objects.get(type=TransactionType.REFUND).source == TransactionSource.ADMIN


# --- CSV export ---------------------------------------------------------------------------


def _csv_rows(response) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_csv_export_streams_the_selected_entries(finance):
    balance = funded_balance(currency="KWD", amount="1.25")
    payment = pay(balance, "0.5", merchant="=HYPERLINK(1)")
    unselected = funded_balance(amount="3.00").entries.get()

    response = finance.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [str(entry.pk) for entry in balance.entries.all()]}
    )

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = _csv_rows(response)
    assert {row["id"] for row in rows} == {str(entry.pk) for entry in balance.entries.all()}
    assert str(unselected.pk) not in {row["id"] for row in rows}
    payment_row = next(row for row in rows if row["id"] == str(payment.pk))
    assert payment_row["amount"] == "0.500"
    assert payment_row["balance_after"] == "0.750"
    assert payment_row["currency"] == "KWD"
    assert payment_row["owner_email"] == balance.wallet.owner.email
    # A cell a spreadsheet would run as a formula is written as text.
    assert payment_row["merchant"] == "'=HYPERLINK(1)"


def test_csv_export_of_everything_matching_the_filters_streams_them_all(finance):
    balance = funded_balance(amount="100.00")
    deposits(balance, 30)
    funded_balance(currency="EUR", amount="5.00")

    response = finance.post(
        f"{CHANGELIST}?currency__code__exact=USD",
        {"action": "export_csv", "select_across": "1", "_selected_action": [str(balance.entries.first().pk)]},
    )

    rows = _csv_rows(response)
    assert len(rows) == 31
    assert {row["currency"] for row in rows} == {"USD"}


def test_csv_export_reads_its_rows_lazily_in_chunks():
    balance = funded_balance(amount="100.00")
    deposits(balance, 5)
    request = RequestFactory().post(CHANGELIST)
    request.user = superuser()  # as the admin calls its actions: with the staff member who asked
    queryset = Transaction.objects.filter(wallet_balance=balance)

    response = TransactionAdmin(Transaction, site).export_csv(request, queryset)

    # Nothing has been read when the response is handed back: rows come from the cursor as it streams.
    assert isinstance(response, StreamingHttpResponse)
    assert queryset._result_cache is None
    lines = list(response.streaming_content)
    assert len(lines) == 1 + 6


# --- query counts ---------------------------------------------------------------------------


def test_changelist_runs_the_same_number_of_queries_for_3_and_30_entries(support, django_assert_max_num_queries):
    balance = funded_balance(amount="100.00")
    deposits(balance, 2)
    support.get(CHANGELIST)  # warm the content-type and permission caches

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, CHANGELIST)
    deposits(balance, 27)
    pay(funded_balance(amount="50.00"), "10.00")
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, CHANGELIST)

    assert Transaction.objects.count() == 32
    assert many == few


def test_entry_page_runs_a_bounded_number_of_queries(support, django_assert_max_num_queries):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, "40.00")
    support.get(change_url(payment))

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, change_url(payment))
    deposits(balance, 30)
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, change_url(payment))

    assert many == few


def test_refund_page_runs_a_bounded_number_of_queries(finance, django_assert_max_num_queries):
    payment = pay(funded_balance(amount="100.00"), "40.00")

    with django_assert_max_num_queries(QUERY_BOUND):
        response = finance.get(refund_url(payment))

    assert response.status_code == HTTPStatus.OK
    assert "40.00" in response.content.decode()


def test_ledger_links_from_a_balance_and_a_wallet_filter_the_changelist(support):
    balance = funded_balance(amount="100.00")
    pay(balance, "1.00")
    funded_balance(amount="5.00")

    by_balance = support.get(CHANGELIST, {"wallet_balance": str(balance.pk)})
    by_wallet = support.get(CHANGELIST, {"wallet": str(balance.wallet_id)})

    assert by_balance.status_code == by_wallet.status_code == HTTPStatus.OK
    assert set(by_balance.context["cl"].result_list) == set(balance.entries.all())
    assert set(by_wallet.context["cl"].result_list) == set(balance.entries.all())
