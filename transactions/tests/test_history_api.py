"""The history endpoints of API.md: the caller's entries, newest first, cursor-paginated, filtered; one entry."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.db import connection

from conftest import error_code
from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction, TransactionType
from transactions.services import deposit_create
from wallets.models import WalletBalance

HISTORY = "/api/v1/transactions/"


def balance_of(user, *, currency: str = "USD", amount: str = "100.00", wallet=None) -> WalletBalance:
    return funded_balance(wallet=wallet or WalletFactory(owner=user), currency=currency, amount=amount)


def deposit(api, balance: WalletBalance, amount: str = "1.00") -> dict:
    response = api.post(f"{HISTORY}deposit/", {"wallet_balance_id": str(balance.pk), "amount": amount})
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()


def ids(response) -> list[str]:
    assert response.status_code == HTTPStatus.OK, response.json()
    return [entry["id"] for entry in response.json()["results"]]


def iso(moment) -> str:
    return moment.astimezone(UTC).isoformat()


# --- listing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_lists_the_callers_entries_newest_first(api, user):
    balance = balance_of(user, amount="10.00")
    first = deposit(api, balance, "1.00")
    second = deposit(api, balance, "2.00")
    seed = Transaction.objects.get(wallet_balance=balance, sequence=1)

    response = api.get(HISTORY)

    assert ids(response) == [second["id"], first["id"], str(seed.pk)]
    body = response.json()
    assert {"next", "previous", "results"} <= set(body)
    assert body["results"][0]["sequence"] == 3
    assert body["results"][0]["balance_after"] == "13.00"


@pytest.mark.django_db
def test_history_shows_no_entries_of_other_users(api, user, other_api, other_user):
    balance_of(other_user)
    mine = balance_of(user)

    response = api.get(HISTORY)

    assert ids(response) == [str(Transaction.objects.get(wallet_balance=mine).pk)]


@pytest.mark.django_db
def test_history_of_a_user_without_entries_is_empty(api):
    response = api.get(HISTORY)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == []
    assert response.json()["next"] is None


@pytest.mark.django_db
def test_history_shows_the_recipient_their_leg_and_the_sender_only_theirs(api, user, other_api, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="0")
    sent = api.post(
        f"{HISTORY}transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    ).json()

    sender_types = [entry["type"] for entry in api.get(HISTORY).json()["results"]]
    recipient = other_api.get(HISTORY).json()["results"]

    assert sender_types == ["TRANSFER_OUT", "DEPOSIT"]
    assert [entry["type"] for entry in recipient] == ["TRANSFER_IN"]
    assert recipient[0]["reference"] == sent["reference"]
    assert recipient[0]["related_wallet_balance_id"] == str(source.pk)


@pytest.mark.django_db
def test_history_needs_authentication(anon_client):
    response = anon_client.get(HISTORY)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"


# --- cursor pagination -----------------------------------------------------------------------


@pytest.mark.django_db
def test_history_pages_through_every_entry_once_with_a_cursor(api, user):
    balance = balance_of(user, amount="1.00")
    for _ in range(6):
        deposit(api, balance)
    expected = ids(api.get(HISTORY))
    assert len(expected) == 7

    seen: list[str] = []
    page = api.get(HISTORY, {"page_size": 3}).json()
    assert page["previous"] is None
    pages = 1
    seen += [entry["id"] for entry in page["results"]]
    while page["next"]:
        assert "cursor=" in page["next"]
        page = api.get(page["next"]).json()
        pages += 1
        seen += [entry["id"] for entry in page["results"]]

    assert seen == expected
    assert pages == 3
    assert page["previous"] is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "page_size", ["٣", "３", "1٠", " 3", "+3", "3_0", "3.0", "0", "-1", "abc", "", "201", "9" * 5000]
)
def test_history_refuses_a_page_size_that_is_not_ascii_digits(api, user, page_size):
    balance_of(user)

    response = api.get(HISTORY, {"page_size": page_size})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["page_size"]


@pytest.mark.django_db
@pytest.mark.parametrize(("page_size", "shown"), [("2", 2), ("002", 2), ("200", 3)])
def test_history_takes_a_page_size_of_ascii_digits_up_to_the_maximum(api, user, page_size, shown):
    balance = balance_of(user)
    deposit(api, balance)
    deposit(api, balance)

    response = api.get(HISTORY, {"page_size": page_size})

    assert len(ids(response)) == shown


@pytest.mark.django_db
def test_history_previous_link_goes_back_a_page(api, user):
    balance = balance_of(user, amount="1.00")
    for _ in range(4):
        deposit(api, balance)
    first = api.get(HISTORY, {"page_size": 2}).json()

    second = api.get(first["next"]).json()
    back = api.get(second["previous"]).json()

    assert [entry["id"] for entry in back["results"]] == [entry["id"] for entry in first["results"]]


@pytest.mark.django_db
def test_history_cursor_is_stable_when_new_entries_arrive(api, user):
    balance = balance_of(user, amount="1.00")
    for _ in range(3):
        deposit(api, balance)
    everything = ids(api.get(HISTORY))
    first = api.get(HISTORY, {"page_size": 2}).json()

    deposit(api, balance)  # newer than every entry already paged
    second = api.get(first["next"]).json()

    assert [entry["id"] for entry in second["results"]] == everything[2:4]


def ledger_with_ties(user, *, entries: int, tie_group: int) -> list[str]:
    """`entries` entries on one balance whose times come in groups of `tie_group` equal `created_at`.

    The services stamp each entry with `clock_timestamp()`, so ties are forced
    afterwards: the ledger's triggers refuse every UPDATE, and are stepped
    around for this test's own transaction only. Returns the ids newest first
    by (created_at, id), the order the contract's history must show.
    """
    balance = balance_of(user, amount="1.00")
    for _ in range(entries - 1):
        deposit_create(wallet_balance_id=balance.pk, amount=Decimal("1"), owner=user, created_by=user, source="API")
    rows = list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence").values_list("pk", flat=True))
    assert len(rows) == entries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for start in range(0, entries, tie_group):
            group = rows[start : start + tie_group]
            cursor.execute(
                f"UPDATE {Transaction._meta.db_table} SET created_at = %s WHERE id = ANY(%s)",
                [TIE_EPOCH + timedelta(seconds=start), group],
            )
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    stamped = Transaction.objects.filter(wallet_balance=balance).values_list("created_at", "pk")
    assert len({created_at for created_at, _ in stamped}) == -(-entries // tie_group)
    return [str(pk) for _, pk in sorted(stamped, reverse=True)]


TIE_EPOCH = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


def walk(api, url: str, link: str) -> list[dict]:
    """Every page from `url` on, following `link` (`next` or `previous`) to its end."""
    pages = [api.get(url).json()]
    while pages[-1][link]:
        pages.append(api.get(pages[-1][link]).json())
        assert len(pages) < 100, "the links go round in a circle"
    return pages


def page_ids(page: dict) -> list[str]:
    return [entry["id"] for entry in page["results"]]


@pytest.mark.django_db
@pytest.mark.parametrize("tie_group", [1, 2, 3, 7], ids=lambda size: f"ties-of-{size}")
def test_history_pages_both_ways_across_entries_that_share_a_time(api, user, tie_group):
    expected = ledger_with_ties(user, entries=7, tie_group=tie_group)
    ledger_before = Transaction.objects.count()

    for size in range(1, len(expected) + 2):
        forward = walk(api, f"{HISTORY}?page_size={size}", "next")
        assert [entry for page in forward for entry in page_ids(page)] == expected, size
        assert forward[0]["previous"] is None
        assert all(len(page_ids(page)) == size for page in forward[:-1])

        backward = walk(api, forward[-1]["previous"], "previous") if forward[-1]["previous"] else []
        seen_backwards = [entry for page in reversed(backward) for entry in page_ids(page)]
        assert seen_backwards + page_ids(forward[-1]) == expected, size

        for page in forward + backward:
            # Each link, either way, continues exactly where its page stops.
            shown = page_ids(page)
            if page["next"]:
                following = page_ids(api.get(page["next"]).json())
                assert following[0] == expected[expected.index(shown[-1]) + 1], size
            if page["previous"]:
                preceding = page_ids(api.get(page["previous"]).json())
                assert preceding[-1] == expected[expected.index(shown[0]) - 1], size
    assert Transaction.objects.count() == ledger_before


@pytest.mark.django_db
def test_history_previous_of_the_first_page_and_next_of_the_last_are_none(api, user):
    expected = ledger_with_ties(user, entries=4, tie_group=4)

    first = api.get(HISTORY, {"page_size": 2}).json()
    last = api.get(first["next"]).json()

    assert page_ids(first) + page_ids(last) == expected
    assert first["previous"] is None
    assert last["next"] is None
    assert page_ids(api.get(last["previous"]).json()) == page_ids(first)
    assert api.get(last["previous"]).json()["previous"] is None


@pytest.mark.django_db
def test_history_refuses_a_malformed_cursor_with_400(api):
    response = api.get(HISTORY, {"cursor": "not-a-cursor"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "cursor" in response.json()["error"]["details"]


def b64(text: str | bytes) -> str:
    """A cursor-shaped token: `text` in unpadded URL-safe base64, as the links carry it."""
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


WHEN = "2026-11-25T10:05:00.123456+00:00"
SOME_ID = "01a2473b-2085-7439-a579-314d7b8e6dfe"
MALFORMED_CURSORS = [
    pytest.param("not-a-cursor", id="not-base64"),
    pytest.param("%%%", id="not-base64-at-all"),
    pytest.param("", id="empty"),
    pytest.param("a", id="truncated-base64"),
    pytest.param(b64(f"p={WHEN}&i={SOME_ID}") + "==", id="padded"),
    pytest.param(base64.b64encode(b"p=\xfb\xff&i=?").decode(), id="standard-base64-alphabet"),
    pytest.param("A" * 10_000, id="huge"),
    pytest.param("٣٣٣٣", id="non-ascii"),
    pytest.param(b64(b"\xff\xfe\x00"), id="binary-inside"),
    pytest.param(b64("p=notadate"), id="position-not-a-time"),
    pytest.param(b64("p=2026-11-25T10:05:00+00:00"), id="time-without-id"),
    pytest.param(b64(f"i={SOME_ID}"), id="id-without-time"),
    pytest.param(b64(f"p={WHEN}&i=not-a-uuid"), id="id-not-a-uuid"),
    pytest.param(b64(f"p={WHEN}&i=" + "9" * 1000), id="id-a-huge-number"),
    pytest.param(b64(f"p={WHEN}&i={SOME_ID.upper()}"), id="id-not-canonical"),
    pytest.param(b64(f"p={WHEN}&i={{{SOME_ID}}}"), id="id-in-braces"),
    pytest.param(b64(f"p=2026-13-45T10:05:00.123456+00:00&i={SOME_ID}"), id="no-such-date"),
    pytest.param(b64(f"p=99999-01-01T00:00:00.000000+00:00&i={SOME_ID}"), id="year-out-of-range"),
    pytest.param(b64(f"p=0001-01-01T00:00:00.000000+14:00&i={SOME_ID}"), id="before-year-one-in-utc"),
    pytest.param(b64(f"p=9999-12-31T23:59:59.999999-14:00&i={SOME_ID}"), id="after-year-9999-in-utc"),
    pytest.param(b64(f"p=NaN&i={SOME_ID}"), id="time-nan"),
    pytest.param(b64(f"p=1e999&i={SOME_ID}"), id="time-a-huge-number"),
    pytest.param(b64(f"p=1764065100&i={SOME_ID}"), id="time-as-epoch-seconds"),
    pytest.param(b64(f"p=2026-11-25T10:05:00.123456&i={SOME_ID}"), id="time-without-zone"),
    pytest.param(b64(f"p=2026-11-25T12:05:00.123456+02:00&i={SOME_ID}"), id="time-in-another-zone"),
    pytest.param(b64(f"p=2026-11-25T10:05:00.123456+00:00\x00&i={SOME_ID}"), id="nul-in-time"),
    pytest.param(b64(f"p=٢٠٢٦-11-25T10:05:00.123456+00:00&i={SOME_ID}"), id="non-ascii-digits-in-time"),
    pytest.param(b64(f"p={WHEN}&i={SOME_ID}&r=2"), id="direction-not-a-flag"),
    pytest.param(b64(f"p={WHEN}&i={SOME_ID}&r=0"), id="direction-spelled-out"),
    pytest.param(b64(f"p={WHEN}&i={SOME_ID}&x=1"), id="unknown-field"),
    pytest.param(b64(f"p={WHEN}&i={SOME_ID}&p={WHEN}"), id="repeated-field"),
    pytest.param(b64(f"i={SOME_ID}&p={WHEN}"), id="fields-out-of-order"),
    pytest.param(b64("o=99999999"), id="offset-of-another-pagination"),
    pytest.param(b64("o=-1"), id="negative-offset"),
    pytest.param(b64("r=x"), id="direction-garbage"),
    pytest.param(b64("p=%00"), id="percent-escape"),
    pytest.param("n", id="forward-without-a-position"),
    pytest.param(f"n0123.{SOME_ID.replace('-', '')}", id="micros-with-a-leading-zero"),
    pytest.param(f"n{'9' * 18}.{SOME_ID.replace('-', '')}", id="micros-past-the-pattern"),
    pytest.param(f"n123.{SOME_ID}", id="id-with-hyphens"),
    pytest.param(f"n123.{SOME_ID.replace('-', '').upper()}", id="id-in-capitals"),
    pytest.param(f"x123.{SOME_ID.replace('-', '')}", id="no-such-direction"),
    pytest.param(f"n-123.{SOME_ID.replace('-', '')}", id="negative-micros"),
    pytest.param(f"p123.{SOME_ID.replace('-', '')}\n", id="newline-after"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_history_refuses_every_malformed_cursor_with_400_and_a_warning(api, user, cursor, caplog):
    balance_of(user)

    with caplog.at_level(logging.WARNING, logger="wallet.errors"):
        response = api.get(HISTORY, {"cursor": cursor})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["cursor"]
    warnings = [record for record in caplog.records if record.name == "wallet.errors"]
    assert [record.levelno for record in warnings] == [logging.WARNING]
    assert warnings[0].exc_info is None


SOME_HEX = SOME_ID.replace("-", "")
LATEST_MICROS = "9" * 17  # the largest position the pattern admits: in the year 5138


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cursor", "shows_entry"),
    [
        (f"n0.{SOME_HEX}", False),  # older than everything
        (f"n{LATEST_MICROS}.{SOME_HEX}", True),
        (f"p{LATEST_MICROS}.{SOME_HEX}", False),  # newer than everything
        (f"p0.{SOME_HEX}", True),
        ("p", True),  # the last page
    ],
)
def test_history_answers_a_well_formed_cursor_anywhere_in_time(api, user, cursor, shows_entry):
    balance = balance_of(user)
    entry = Transaction.objects.get(wallet_balance=balance)

    response = api.get(HISTORY, {"cursor": cursor})

    assert ids(response) == ([str(entry.pk)] if shows_entry else [])


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_filters_by_wallet_balance_id(api, user):
    wallet = WalletFactory(owner=user)
    usd = balance_of(user, currency="USD", wallet=wallet)
    eur = balance_of(user, currency="EUR", wallet=wallet)
    deposit(api, usd)
    deposit(api, eur)

    response = api.get(HISTORY, {"wallet_balance_id": str(eur.pk)})

    assert ids(response)
    assert {entry["wallet_balance_id"] for entry in response.json()["results"]} == {str(eur.pk)}
    assert len(ids(response)) == 2


@pytest.mark.django_db
def test_history_filters_by_wallet_id(api, user):
    travel = WalletFactory(owner=user)
    home = WalletFactory(owner=user)
    balance_of(user, currency="USD", wallet=travel)
    balance_of(user, currency="EUR", wallet=travel)
    balance_of(user, currency="USD", wallet=home)

    response = api.get(HISTORY, {"wallet_id": str(travel.pk)})

    assert len(ids(response)) == 2
    assert {entry["wallet_id"] for entry in response.json()["results"]} == {str(travel.pk)}


@pytest.mark.django_db
def test_history_filters_by_type(api, user):
    balance = balance_of(user, amount="100.00")
    deposit(api, balance)
    api.post(f"{HISTORY}withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "5.00"})
    api.post(f"{HISTORY}payment/", {"wallet_balance_id": str(balance.pk), "amount": "5.00", "merchant": "Shop"})

    deposits = api.get(HISTORY, {"type": "DEPOSIT"})
    payments = api.get(HISTORY, {"type": "PAYMENT"})

    assert len(ids(deposits)) == 2
    assert {entry["type"] for entry in deposits.json()["results"]} == {"DEPOSIT"}
    assert [entry["merchant"] for entry in payments.json()["results"]] == ["Shop"]


@pytest.mark.django_db
def test_history_combines_filters(api, user):
    wallet = WalletFactory(owner=user)
    usd = balance_of(user, currency="USD", wallet=wallet)
    balance_of(user, currency="EUR", wallet=wallet)
    api.post(f"{HISTORY}withdraw/", {"wallet_balance_id": str(usd.pk), "amount": "5.00"})

    response = api.get(HISTORY, {"wallet_id": str(wallet.pk), "type": "WITHDRAWAL"})

    assert [entry["type"] for entry in response.json()["results"]] == ["WITHDRAWAL"]


@pytest.mark.django_db
def test_created_after_is_inclusive_and_created_before_exclusive(api, user):
    balance = balance_of(user, amount="1.00")
    first = Transaction.objects.get(wallet_balance=balance)
    second = Transaction.objects.get(pk=deposit(api, balance)["id"])
    third = Transaction.objects.get(pk=deposit(api, balance)["id"])
    assert first.created_at < second.created_at < third.created_at

    after = api.get(HISTORY, {"created_after": iso(second.created_at)})
    before = api.get(HISTORY, {"created_before": iso(second.created_at)})
    window = api.get(HISTORY, {"created_after": iso(second.created_at), "created_before": iso(third.created_at)})

    assert ids(after) == [str(third.pk), str(second.pk)]
    assert ids(before) == [str(first.pk)]
    assert ids(window) == [str(second.pk)]


@pytest.mark.django_db
def test_history_date_filters_take_plain_dates_as_midnight_utc(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    today = entry.created_at.astimezone(UTC).date()
    tomorrow = today + timedelta(days=1)

    assert ids(api.get(HISTORY, {"created_after": today.isoformat()})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_before": today.isoformat()})) == []
    assert ids(api.get(HISTORY, {"created_before": tomorrow.isoformat()})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_after": tomorrow.isoformat()})) == []


@pytest.mark.django_db
def test_history_datetime_filters_honour_a_time_zone_offset(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    # The same instant written in UTC+02:00.
    shifted = entry.created_at.astimezone(UTC) + timedelta(hours=2)
    written = shifted.replace(tzinfo=None).isoformat() + "+02:00"

    assert ids(api.get(HISTORY, {"created_after": written})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_before": written})) == []


@pytest.mark.django_db
def test_history_refuses_a_datetime_without_a_zone(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    naive = entry.created_at.astimezone(UTC).replace(tzinfo=None).isoformat()

    response = api.get(HISTORY, {"created_after": naive})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert list(response.json()["error"]["details"]) == ["created_after"]


@pytest.mark.django_db
def test_history_reads_a_datetime_in_any_zone_and_rounds_a_fraction_finer_than_a_microsecond_up(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    at = entry.created_at.astimezone(UTC)
    in_tokyo = at.astimezone(timezone(timedelta(hours=9))).isoformat()
    just_after = at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "1Z"  # a tenth of a microsecond after the entry

    assert ids(api.get(HISTORY, {"created_after": in_tokyo})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_before": in_tokyo})) == []
    assert ids(api.get(HISTORY, {"created_after": just_after})) == []
    assert ids(api.get(HISTORY, {"created_before": just_after})) == [str(entry.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("wallet_balance_id", "not-a-uuid"),
        ("wallet_balance_id", ""),
        ("wallet_id", "123"),
        ("wallet_id", ""),
        ("wallet_id", "5d7c2b9a3a654a439d0e8a3c1e1f7b22"),
        ("wallet_id", "urn:uuid:5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22"),
        ("type", ""),
        ("created_after", ""),
        ("created_after", "2026-01-01T00:00:00"),
        ("created_after", "2026-01-01 00:00:00Z"),
        ("type", "BOGUS"),
        ("type", "deposit"),
        ("created_after", "yesterday"),
        ("created_after", "2026-13-01"),
        ("created_before", "2026-02-30"),
        ("created_before", "2026-01-01T25:00:00"),
        ("created_after", "٢٠٢٦-٠١-٠١"),
        ("created_after", "２０２６-０１-０１"),
        ("created_before", "2026-01-0١"),
        ("created_before", "2026-01-01T1٠:00:00"),
        ("created_after", "\u00a02026-01-01"),
    ],
)
def test_history_refuses_a_malformed_filter_with_400(api, name, value):
    response = api.get(HISTORY, {name: value})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert name in response.json()["error"]["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["wallet_balance_id", "wallet_id"])
def test_history_with_an_id_that_is_not_the_callers_is_an_empty_list(api, user, other_user, name):
    balance_of(user)
    theirs = balance_of(other_user)
    value = theirs.pk if name == "wallet_balance_id" else theirs.wallet_id

    response = api.get(HISTORY, {name: str(value)})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == []


@pytest.mark.django_db
def test_history_with_an_unknown_id_is_an_empty_list(api, user):
    balance_of(user)

    response = api.get(HISTORY, {"wallet_balance_id": str(uuid.uuid4())})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == []


# --- detail ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_answers_one_entry_of_the_caller(api, user):
    balance = balance_of(user, amount="1.00")
    created = deposit(api, balance, "2.50")

    response = api.get(f"{HISTORY}{created['id']}/")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == created


@pytest.mark.django_db
def test_detail_of_another_users_entry_answers_404(api, other_user):
    entry = Transaction.objects.get(wallet_balance=balance_of(other_user))

    response = api.get(f"{HISTORY}{entry.pk}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_detail_of_the_recipients_transfer_leg_answers_404_to_the_sender(api, user, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="0")
    api.post(
        f"{HISTORY}transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    )
    incoming = Transaction.objects.get(wallet_balance=destination, type=TransactionType.TRANSFER_IN)

    response = api.get(f"{HISTORY}{incoming.pk}/")

    assert response.status_code == HTTPStatus.NOT_FOUND


@pytest.mark.django_db
@pytest.mark.parametrize("entry_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_detail_of_an_unknown_entry_answers_404(api, entry_id):
    response = api.get(f"{HISTORY}{entry_id}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
