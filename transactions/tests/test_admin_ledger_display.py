"""The ledger as people read it in the admin: columns, times, amounts, headings, filters, search, export policy."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from decimal import Decimal
from html import unescape
from http import HTTPStatus

import pytest
from django.urls import reverse

from tests.admin_support import round_trips
from tests.factories import funded_balance
from transactions.models import Transaction, TransactionType
from transactions.services import deposit_create, payment_create, transfer_create

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:transactions_transaction_changelist")
QUERY_BOUND = 20
# "2026-11-25 10:05:03 UTC": seconds, and the zone named.
TIME_WITH_SECONDS_AND_ZONE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def change_url(entry: Transaction) -> str:
    return reverse("admin:transactions_transaction_change", args=[entry.pk])


def pay(balance, amount: str = "12.00", merchant: str = "Coffee Shop", description: str = "") -> Transaction:
    return payment_create(
        wallet_balance_id=balance.pk,
        amount=Decimal(amount),
        merchant=merchant,
        description=description,
        owner=None,
        created_by=None,
    )


def transfer(source, destination, amount: str = "30.00") -> Transaction:
    return transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal(amount),
        owner=None,
        created_by=None,
    )


def results(response) -> list[Transaction]:
    assert response.status_code == HTTPStatus.OK, response.status_code
    return list(response.context["cl"].result_list)


def column_headers(body: str) -> list[str]:
    head = body.split("<thead>", 1)[1].split("</thead>", 1)[0]
    texts = re.findall(r'<div class="text">(.*?)</div>', head, re.S)
    return [unescape(re.sub(r"<[^>]+>", "", text)).strip() for text in texts]


def filter_titles(response) -> list[str]:
    return [str(spec.title) for spec in response.context["cl"].filter_specs]


# --- the list --------------------------------------------------------------------------------


def test_ledger_list_has_the_columns_that_fit_a_screen_with_names_reasons_and_zoned_times(support):
    balance = funded_balance(amount="100.00")
    payment = pay(balance, "12.00", description="Team lunch")
    owner = balance.wallet.owner

    response = support.get(CHANGELIST)

    body = response.content.decode()
    assert column_headers(body) == [
        "Entry",
        "Created at",
        "Owner",
        "Type",
        "Amount",
        "Balance after",
        "Reference",
        "Reason",
    ]
    assert "<title>Ledger entries | Wallet back office</title>" in body
    assert "<h1>Ledger entries</h1>" in body
    assert f"{owner.name} &lt;{owner.email}&gt;" in body
    assert ">Team lunch<" in body
    assert ">12.00\u00a0USD<" in body and ">88.00\u00a0USD<" in body
    assert payment.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") in body
    assert "000000" not in body  # no raw 18-place decimals anywhere


def test_each_entry_is_told_apart_by_the_end_of_its_id_and_its_place_in_the_chain_and_links_to_its_page(support):
    balance = funded_balance(amount="100.00")
    payments = [pay(balance, "1.00") for _ in range(3)]

    body = support.get(CHANGELIST).content.decode()

    # Ids are time-ordered: entries made within a minute share their first eight digits, so those are not shown.
    cells = re.findall(r'<th class="field-short_id">(.*?)</th>', body, re.S)
    shown = [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]
    assert shown == [
        f"…{str(entry.pk)[-8:]} #{entry.sequence}"
        for entry in reversed([*balance.entries.filter(sequence=1), *payments])
    ]
    assert len(set(shown)) == 4
    for entry in payments:
        assert f'<a href="{change_url(entry)}">' in body
        assert f'title="Entry {entry.pk}, number {entry.sequence} of its balance"' in body


def test_search_finds_entries_by_owner_name_and_by_reason(support):
    balance = funded_balance(amount="100.00")
    lunch = pay(balance, "12.00", description="Team lunch at Luigi's")
    other = funded_balance(amount="100.00")
    pay(other, "5.00", description="Taxi")

    by_name = support.get(CHANGELIST, {"q": balance.wallet.owner.name})
    by_reason = support.get(CHANGELIST, {"q": "luigi"})

    assert set(results(by_name)) == set(balance.entries.all())
    assert results(by_reason) == [lunch]


def test_date_range_filter_takes_both_days_and_shows_itself(support):
    entry = funded_balance(amount="5.00").entries.get()
    day = entry.created_at.astimezone(UTC).date()
    before, after = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()

    same_day = support.get(CHANGELIST, {"created_from": day.isoformat(), "created_to": day.isoformat()})
    from_tomorrow = support.get(CHANGELIST, {"created_from": after})
    until_yesterday = support.get(CHANGELIST, {"created_to": before})
    malformed = support.get(CHANGELIST, {"created_from": "25/11/2026"})

    assert results(same_day) == [entry]
    assert results(from_tomorrow) == []
    assert results(until_yesterday) == []
    assert same_day.context["cl"].has_active_filters
    assert "created at (UTC)" in filter_titles(same_day)
    body = same_day.content.decode()
    assert f'name="created_from" value="{day.isoformat()}"' in body
    assert "All dates" in body
    # A date the filter cannot read is the admin's "?e=1", not a crash and not a silent full list.
    assert malformed.status_code == HTTPStatus.FOUND
    assert malformed["Location"].endswith("?e=1")


@pytest.mark.parametrize("parameter", ["wallet_balance", "wallet", "reference"])
def test_filters_applied_by_links_are_shown_and_a_search_runs_inside_them(support, parameter):
    balance = funded_balance(amount="100.00")
    mine = pay(balance, "1.00", merchant="Bookshop")
    elsewhere = pay(funded_balance(amount="100.00"), "1.00", merchant="Bookshop")
    value = {"wallet_balance": balance.pk, "wallet": balance.wallet_id, "reference": mine.reference}[parameter]

    filtered = support.get(CHANGELIST, {parameter: str(value)})
    searched = support.get(CHANGELIST, {parameter: str(value), "q": "bookshop"})

    assert mine in results(filtered) and elsewhere not in results(filtered)
    assert results(searched) == [mine]
    for response in (filtered, searched):
        cl = response.context["cl"]
        assert cl.has_active_filters
        selected = [spec for spec in cl.filter_specs if getattr(spec, "value", None) and spec.value() == str(value)]
        assert len(selected) == 1, filter_titles(response)
        body = response.content.decode()
        assert "Clear all filters" in body
        # The search form carries the filter along in the open, next to the visible filter.
        assert f'<input type="hidden" name="{parameter}" value="{value}">' in body
    if parameter != "reference":
        assert balance.wallet.owner.email in str(selected[0].lookup_choices[0][1])


def test_link_filters_take_no_room_when_they_are_not_applied(support):
    funded_balance(amount="5.00")

    response = support.get(CHANGELIST)

    assert not response.context["cl"].has_active_filters
    titles = filter_titles(response)
    assert "balance" not in titles and "wallet" not in titles and "movement (reference)" not in titles


def test_a_malformed_id_in_a_link_filter_lists_nothing(support):
    funded_balance(amount="5.00")

    response = support.get(CHANGELIST, {"wallet_balance": "not-an-id"})

    assert results(response) == []
    assert "not an id" in response.content.decode()


def test_changelist_with_filters_and_search_runs_the_same_number_of_queries_for_3_and_30_entries(
    support, django_assert_max_num_queries
):
    balance = funded_balance(amount="100.00")
    pay(balance, "1.00")
    query = f"{CHANGELIST}?wallet_balance={balance.pk}&wallet={balance.wallet_id}&created_from=2000-01-01&q=e"
    support.get(query)

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, query)
    for _ in range(28):
        deposit_create(wallet_balance_id=balance.pk, amount=Decimal("1.00"), owner=None, created_by=None)
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, query)

    assert many == few


# --- one entry -------------------------------------------------------------------------------


def test_entry_page_heading_names_the_entry_with_its_amount_as_the_body_shows_it(support):
    payment = pay(funded_balance(amount="100.00"), "12.00")

    body = support.get(change_url(payment)).content.decode()

    heading = f"Ledger entry …{str(payment.pk)[-8:]} (PAYMENT 12.00 USD)"
    assert f"<title>{heading} | Wallet back office</title>" in body
    assert f"<h1>{heading}</h1>" in body
    assert "View ledger entry" not in body and "View transaction" not in body
    assert "12.000000" not in body
    assert TIME_WITH_SECONDS_AND_ZONE.search(body)


def test_transfer_entry_shows_its_counterpart_with_owner_and_the_rate_without_padding(support):
    source = funded_balance(amount="100.00")
    destination = funded_balance(currency="EUR", amount="0")
    out_leg = transfer(source, destination, "10.00")
    in_leg = Transaction.objects.get(reference=out_leg.reference, type=TransactionType.TRANSFER_IN)

    out_body = unescape(support.get(change_url(out_leg)).content.decode())
    in_body = unescape(support.get(change_url(in_leg)).content.decode())

    counterpart_url = reverse("admin:wallets_walletbalance_change", args=[destination.pk])
    assert f'<a href="{counterpart_url}">{destination.wallet.name} · EUR — ' in out_body
    assert destination.wallet.owner.email in out_body
    assert "1 USD = 0.91 EUR" in out_body
    assert "1 USD = 0.91 EUR" in in_body
    assert source.wallet.owner.email in in_body
    assert "0.910000" not in out_body


def test_transfer_entry_page_runs_a_bounded_number_of_queries(support, django_assert_max_num_queries):
    out_leg = transfer(funded_balance(amount="100.00"), funded_balance(currency="EUR", amount="0"), "10.00")
    support.get(change_url(out_leg))

    with django_assert_max_num_queries(QUERY_BOUND):
        round_trips(support, change_url(out_leg))


def test_an_entry_names_itself_with_the_currency_digits():
    payment = pay(funded_balance(amount="100.00"), "12.00")

    with_currency = Transaction.objects.select_related("currency").get(pk=payment.pk)
    without = Transaction.objects.get(pk=payment.pk)

    assert str(with_currency) == "PAYMENT 12.00 USD"
    assert str(without) == "PAYMENT 12 USD"


# --- who may export ------------------------------------------------------------------------


def test_support_has_no_export_and_cannot_run_it(support):
    entry = funded_balance(amount="100.00").entries.get()

    page = support.get(CHANGELIST)
    response = support.post(CHANGELIST, {"action": "export_csv", "_selected_action": [str(entry.pk)]})

    assert "export_csv" not in page.content.decode()
    assert 'name="_selected_action"' not in page.content.decode()  # no action, no checkboxes
    assert not response.get("Content-Type", "").startswith("text/csv")
    assert "Content-Disposition" not in response


def test_finance_sees_the_export_action(finance, finance_user):
    funded_balance(amount="100.00")

    page = finance.get(CHANGELIST)

    assert finance_user.has_perm("transactions.export_ledger")
    assert 'value="export_csv"' in page.content.decode()
