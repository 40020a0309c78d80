"""The known facts of a balance (transactions.posting.facts.BalanceFacts): a movement validated from them skips the
pre-lock read, and answers exactly as a movement validated from a fresh read would.

The facts live in the process across tests: each test makes its own balances and says what it assumes.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from conftest import client_for, error_code, held_in_redis
from tests.factories import BalanceFactory, WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.posting import facts
from transactions.posting.rows import BalanceRow
from transactions.services import (
    deposit_create,
    opening_deposit_create,
    payment_create,
    transfer_create,
    withdrawal_create,
)
from wallet_project.errors import InvalidInput, LockTimeout, NotFound, WalletFrozen
from wallets.models import Currency, Wallet, WalletBalance
from wallets.services import wallet_set_frozen

_NOT_COUNTED = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
# The pre-lock read and the locked read are the same statement, but for the lock.
_BALANCES_READ = "FROM wallets_walletbalance balance"


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if not query["sql"].upper().startswith(_NOT_COUNTED)]


def pre_lock_reads(sql: list[str]) -> list[str]:
    return [statement for statement in sql if _BALANCES_READ in statement and "FOR NO KEY UPDATE" not in statement]


def ledger_state() -> tuple:
    balances = tuple(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "last_sequence"))
    return balances, Transaction.objects.count()


def known(balance: WalletBalance) -> bool:
    return balance.pk in facts.kept


def forget(*balances: WalletBalance) -> None:
    for balance in balances:
        facts.kept.pop(balance.pk, None)


def deactivate(user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


@pytest.fixture
def source(user) -> WalletBalance:
    return funded_balance(wallet=WalletFactory(owner=user), amount="100.00")


@pytest.fixture
def destination(other_user) -> WalletBalance:
    return funded_balance(wallet=WalletFactory(owner=other_user), amount="10.00")


Move = Callable[..., Transaction]


def movement(kind: str, source: WalletBalance, destination: WalletBalance) -> Move:
    """The service call of one kind of movement, by the owner of `source` unless told, with the amount left open."""
    source_owner = source.wallet.owner  # loaded here, not among the statements a test counts

    def move(amount: str = "1.00", owner: User | str | None = "owner") -> Transaction:
        common: dict[str, Any] = {
            "amount": Decimal(amount),
            "owner": source_owner if owner == "owner" else owner,
            "created_by": None,
        }
        if kind == "transfer":
            return transfer_create(from_wallet_balance_id=source.pk, to_wallet_balance_id=destination.pk, **common)
        if kind == "pay":
            return payment_create(wallet_balance_id=source.pk, merchant="Shop", **common)
        service = {"deposit": deposit_create, "withdraw": withdrawal_create}[kind]
        return service(wallet_balance_id=source.pk, **common)

    return move


KINDS = ["deposit", "withdraw", "pay", "transfer"]


# --- one statement fewer -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_a_movement_with_the_facts_known_runs_one_statement_fewer(source, destination, kind):
    move = movement(kind, source, destination)
    forget(source, destination)

    with CaptureQueriesContext(connection) as first:
        move()
    with CaptureQueriesContext(connection) as second:
        move()

    assert known(source)
    assert len(pre_lock_reads(statements(first))) == 1
    assert pre_lock_reads(statements(second)) == []
    assert len(statements(second)) == len(statements(first)) - 1, "\n".join(statements(second))


@pytest.mark.django_db
def test_a_cross_currency_transfer_always_reads_the_balances_and_the_rate_before_the_locks(user, source, other_user):
    euros = funded_balance(wallet=WalletFactory(owner=other_user), currency="EUR", amount="0")
    move = movement("transfer", source, euros)

    with CaptureQueriesContext(connection) as first:
        move()
    with CaptureQueriesContext(connection) as second:
        move()

    assert known(source) and known(euros)
    for captured in (first, second):
        (read,) = pre_lock_reads(statements(captured))
        assert "rate_to_other" in read
    assert len(statements(second)) == len(statements(first))


# --- refusals are decided from a fresh read ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_a_deactivated_owner_moves_nothing_though_the_facts_were_known(user, source, destination, kind):
    move = movement(kind, source, destination)
    move()
    assert known(source)
    deactivate(user)
    before = ledger_state()

    with pytest.raises(NotFound):
        move()

    assert ledger_state() == before
    assert not known(source)  # the locked read saw the inactive owner


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_a_deactivated_owner_with_too_many_decimals_gets_not_found_as_without_the_facts(
    user, source, destination, kind
):
    move = movement(kind, source, destination)
    move()
    deactivate(user)
    before = ledger_state()

    with pytest.raises(NotFound) as with_facts:
        move(amount="1.001")
    forget(source, destination)
    with pytest.raises(NotFound) as without_facts:
        move(amount="1.001")

    assert with_facts.value.message == without_facts.value.message
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_too_many_decimals_with_the_facts_known_is_refused_as_without_them(source, destination, kind):
    move = movement(kind, source, destination)
    move()
    assert known(source)
    before = ledger_state()

    with pytest.raises(InvalidInput) as with_facts:
        move(amount="1.001")
    forget(source, destination)
    with pytest.raises(InvalidInput) as without_facts:
        move(amount="1.001")

    assert (with_facts.value.message, with_facts.value.details) == (
        without_facts.value.message,
        without_facts.value.details,
    )
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_a_wallet_moved_to_another_owner_is_not_found_by_the_old_one_though_the_facts_were_known(
    user, other_user, source, destination, kind
):
    move = movement(kind, source, destination)
    move()
    assert known(source)
    new_owner = WalletFactory().owner
    Wallet.objects.filter(pk=source.wallet_id).update(owner=new_owner)
    before = ledger_state()

    with pytest.raises(NotFound):
        move(owner=user)

    assert ledger_state() == before
    # The locked read learnt the new facts: the new owner moves money on it.
    assert facts.kept[source.pk].owner_id == new_owner.pk
    move(owner=new_owner)
    assert ledger_state() != before


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_staff_still_move_money_of_a_deactivated_owner_whose_facts_were_known(user, source, destination, kind):
    move = movement(kind, source, destination)
    move()
    deactivate(user)
    before = ledger_state()

    move(owner=None)

    assert ledger_state() != before


@pytest.mark.django_db
def test_a_busy_balance_of_a_deactivated_owner_answers_not_found_before_the_lock_wait(
    user, source, destination, short_lock_wait
):
    move = movement("withdraw", source, destination)
    move()
    assert known(source)
    before = ledger_state()

    with held_in_redis(source.pk):
        with pytest.raises(LockTimeout):
            move()
        deactivate(user)
        with pytest.raises(NotFound):  # as the fresh read answered before the locks, without the facts
            move()

    assert ledger_state() == before


# --- through the API ---------------------------------------------------------------------------


def _post(client, endpoint: str, source: WalletBalance, destination: WalletBalance, amount: str, **headers):
    if endpoint == "transfer":
        body = {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk)}
    else:
        body = {"wallet_balance_id": str(source.pk)}
        if endpoint == "payment":
            body["merchant"] = "Shop"
    return client.post(f"/api/v1/transactions/{endpoint}/", {**body, "amount": amount}, format="json", **headers)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["deposit", "withdraw", "payment", "transfer"])
@pytest.mark.parametrize("amount", ["1.00", "1.001"], ids=["amount", "too-many-decimals"])
@pytest.mark.parametrize("idempotency_key", [None, "key-1"], ids=["fast-path", "with-idempotency-key"])
def test_a_deactivated_owners_token_answers_401_though_the_facts_were_known(
    user, source, destination, endpoint, amount, idempotency_key
):
    client = client_for(user)  # still valid after the deactivation: authentication reads no user row
    assert _post(client, endpoint, source, destination, "1.00").status_code == HTTPStatus.CREATED
    assert known(source)
    deactivate(user)
    before = ledger_state()
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}

    response = _post(client, endpoint, source, destination, amount, **headers)

    # The actor's own state comes first (401), whether the facts were known or read afresh.
    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.json()
    assert error_code(response) == "authentication_failed"
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_moved_wallet_answers_404_to_the_old_owners_token_though_the_facts_were_known(user, source, destination):
    client = client_for(user)
    assert _post(client, "withdraw", source, destination, "1.00").status_code == HTTPStatus.CREATED
    Wallet.objects.filter(pk=source.wallet_id).update(owner=WalletFactory().owner)
    before = ledger_state()

    response = _post(client, "withdraw", source, destination, "1.00")

    assert response.status_code == HTTPStatus.NOT_FOUND, response.json()
    assert error_code(response) == "not_found"
    assert ledger_state() == before


# --- what is kept ------------------------------------------------------------------------------


def _row(*, owner_is_active: bool = True) -> BalanceRow:
    return BalanceRow(
        pk=uuid4(),
        wallet_id=uuid4(),
        currency_id="USD",
        amount=Decimal(0),
        last_sequence=0,
        minor_unit=2,
        owner_id=uuid4(),
        is_frozen=False,
        owner_is_active=owner_is_active,
        held_amount=Decimal(0),
        hold_due_at=None,
        hold_due=False,
    )


def test_the_facts_are_bounded_and_the_oldest_go_first(monkeypatch):
    monkeypatch.setattr(facts, "kept", {})
    rows = [_row() for _ in range(facts.MAX_KEPT + 10)]

    facts.remember(rows)

    assert len(facts.kept) == facts.MAX_KEPT
    assert list(facts.kept) == [row.pk for row in rows[10:]]
    # Read again, a kept balance stays one entry.
    facts.remember(rows[-1:])
    assert len(facts.kept) == facts.MAX_KEPT


def test_the_facts_of_a_balance_whose_owner_is_not_active_are_not_kept(monkeypatch):
    monkeypatch.setattr(facts, "kept", {})
    row = _row()
    facts.remember([row])
    assert row.pk in facts.kept

    row.owner_is_active = False
    facts.remember([row, _row(owner_is_active=False)])

    assert facts.kept == {}


@pytest.mark.django_db
def test_a_refused_opening_leaves_no_facts_behind(user):
    wallet = WalletFactory(owner=user)
    wallet_set_frozen(wallet_id=wallet.pk, frozen=True)
    opening = WalletBalance(wallet=wallet, currency=Currency.objects.get(pk="USD"))

    with pytest.raises(WalletFrozen):
        opening_deposit_create(balance=opening, amount=Decimal("5.00"), created_by=None)

    assert not WalletBalance.objects.filter(pk=opening.pk).exists()
    assert opening.pk not in facts.kept


@pytest.mark.django_db
def test_a_balance_opened_empty_is_known_after_its_first_read(user):
    balance = BalanceFactory(wallet=WalletFactory(owner=user))
    assert not known(balance)

    deposit_create(wallet_balance_id=balance.pk, amount=Decimal("1.00"), owner=user, created_by=None)

    assert facts.kept[balance.pk] == facts.BalanceFacts(
        pk=balance.pk, wallet_id=balance.wallet_id, currency_id="USD", minor_unit=2, owner_id=user.pk
    )
