"""The one road for money (transactions.services): the ledger chain, FX rounding and refusals without trace."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from tests.factories import BalanceFactory, UserFactory, WalletFactory, funded_balance
from transactions.models import CREDIT_TYPES, Transaction, TransactionSource, TransactionType
from transactions.services import (
    deposit_create,
    payment_create,
    refund_create,
    refunded_amount,
    transfer_create,
    withdrawal_create,
)
from transactions.tests.test_reconcile import ledger_guards_lifted
from wallet_project.errors import (
    AmountTooSmall,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotRefundable,
    RateUnavailable,
    RefundExceedsPayment,
    SameBalance,
    WalletFrozen,
)
from wallets.models import Currency, ExchangeRate, WalletBalance
from wallets.services import balance_create, exchange_rate_create, wallet_set_frozen


def balance_of(user, *, currency: str = "USD", amount: str = "100.00") -> WalletBalance:
    return funded_balance(wallet=WalletFactory(owner=user), currency=currency, amount=amount)


def ledger_state() -> tuple:
    balances = tuple(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "last_sequence"))
    return balances, Transaction.objects.count()


def assert_chain(balance: WalletBalance) -> list[Transaction]:
    """The balance's entries are numbered 1..n without gaps, each balance_after follows from the one before,
    and the balance holds the last balance_after (Σ credits − Σ debits)."""
    balance.refresh_from_db()
    entries = list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence"))
    assert [entry.sequence for entry in entries] == list(range(1, len(entries) + 1))
    running = Decimal(0)
    for entry in entries:
        running += entry.amount if entry.type in CREDIT_TYPES else -entry.amount
        assert entry.balance_after == running, entry
    assert balance.amount == running
    assert balance.last_sequence == len(entries)
    return entries


def move(kind: str, balance: WalletBalance, amount: str, **extra) -> Transaction:
    services = {"deposit": deposit_create, "withdraw": withdrawal_create, "pay": payment_create}
    if kind == "pay":
        extra.setdefault("merchant", "Shop")
    return services[kind](
        wallet_balance_id=balance.pk, amount=Decimal(amount), owner=balance.wallet.owner, created_by=None, **extra
    )


# --- the ledger chain ------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_movement_takes_the_next_sequence_and_chains_balance_after(user, other_user):
    balance = balance_of(user, amount="100.00")
    other = balance_of(other_user, amount="0")

    move("deposit", balance, "10.00")
    move("withdraw", balance, "5.50")
    move("pay", balance, "4.50")
    transfer_create(
        from_wallet_balance_id=balance.pk,
        to_wallet_balance_id=other.pk,
        amount=Decimal("20"),
        owner=user,
        created_by=user,
    )
    transfer_create(
        from_wallet_balance_id=other.pk,
        to_wallet_balance_id=balance.pk,
        amount=Decimal("7"),
        owner=other_user,
        created_by=other_user,
    )

    entries = assert_chain(balance)
    assert [entry.type for entry in entries] == [
        TransactionType.DEPOSIT,
        TransactionType.DEPOSIT,
        TransactionType.WITHDRAWAL,
        TransactionType.PAYMENT,
        TransactionType.TRANSFER_OUT,
        TransactionType.TRANSFER_IN,
    ]
    assert [entry.balance_after for entry in entries] == [
        Decimal("100.00"),
        Decimal("110.00"),
        Decimal("104.50"),
        Decimal("100.00"),
        Decimal("80.00"),
        Decimal("87.00"),
    ]
    assert [entry.sequence for entry in assert_chain(other)] == [1, 2]


@pytest.mark.django_db
def test_a_refused_movement_takes_no_sequence_number(user):
    balance = balance_of(user, amount="10.00")
    before = ledger_state()

    with pytest.raises(InsufficientFunds):
        move("withdraw", balance, "10.01")

    assert ledger_state() == before
    entry = move("deposit", balance, "1.00")
    assert entry.sequence == 2
    assert_chain(balance)


@pytest.mark.django_db
def test_sequences_are_counted_per_balance(user):
    first = balance_of(user, amount="1.00")
    second = balance_of(user, amount="1.00")

    assert move("deposit", first, "1").sequence == 2
    assert move("deposit", first, "1").sequence == 3
    assert move("deposit", second, "1").sequence == 2


@pytest.mark.django_db
def test_the_balance_equals_credits_minus_debits_after_many_movements(user):
    balance = balance_of(user, amount="0")
    for index in range(1, 11):
        move("deposit", balance, f"{index}.25")
        move("withdraw", balance, f"{index}.05")

    entries = assert_chain(balance)
    entries_of_balance = Transaction.objects.filter(wallet_balance=balance)
    credits = entries_of_balance.filter(type__in=CREDIT_TYPES).aggregate(total=Sum("amount"))["total"]
    debits = entries_of_balance.exclude(type__in=CREDIT_TYPES).aggregate(total=Sum("amount"))["total"]
    assert balance.amount == credits - debits == Decimal("2.00")
    assert len(entries) == 20


@pytest.mark.django_db
def test_the_balance_updated_at_moves_with_each_entry(user):
    balance = balance_of(user, amount="1.00")
    stamp = balance.updated_at

    move("deposit", balance, "1.00")

    balance.refresh_from_db()
    assert balance.updated_at > stamp


@pytest.mark.django_db
def test_a_movement_records_who_asked_and_from_where(user, staff_user):
    balance = balance_of(user, amount="1.00")

    entry = deposit_create(
        wallet_balance_id=balance.pk,
        amount=Decimal("1"),
        owner=None,
        created_by=staff_user,
        source=TransactionSource.ADMIN,
        description="Goodwill",
    )

    assert entry.owner_id == user.pk
    assert entry.created_by == staff_user
    assert entry.source == TransactionSource.ADMIN
    assert entry.description == "Goodwill"
    assert entry.wallet_id == balance.wallet_id
    assert entry.currency_id == "USD"


# --- refusals leave no trace -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_movement_on_a_balance_the_owner_cannot_see_raises_not_found(user, other_user):
    theirs = balance_of(other_user)
    before = ledger_state()

    with pytest.raises(NotFound):
        deposit_create(wallet_balance_id=theirs.pk, amount=Decimal("1"), owner=user, created_by=user)
    with pytest.raises(NotFound):
        transfer_create(
            from_wallet_balance_id=theirs.pk,
            to_wallet_balance_id=theirs.pk,
            amount=Decimal("1"),
            owner=user,
            created_by=user,
        )

    assert ledger_state() == before


@pytest.mark.django_db
def test_a_transfer_to_the_same_balance_raises_same_balance(user):
    balance = balance_of(user)
    before = ledger_state()

    with pytest.raises(SameBalance):
        transfer_create(
            from_wallet_balance_id=balance.pk,
            to_wallet_balance_id=balance.pk,
            amount=Decimal("1"),
            owner=user,
            created_by=user,
        )

    assert ledger_state() == before


@pytest.mark.django_db
def test_a_transfer_refused_for_funds_credits_nothing(user, other_user):
    source = balance_of(user, amount="5.00")
    destination = balance_of(other_user, amount="5.00")
    before = ledger_state()

    with pytest.raises(InsufficientFunds):
        transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("5.01"),
            owner=user,
            created_by=user,
        )

    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_frozen_wallet_on_either_side_refuses_a_transfer(user, other_user, side):
    source = balance_of(user, amount="5.00")
    destination = balance_of(other_user, amount="5.00")
    wallet_set_frozen(wallet_id=(source if side == "source" else destination).wallet_id, frozen=True)
    before = ledger_state()

    with pytest.raises(WalletFrozen):
        transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("1"),
            owner=user,
            created_by=user,
        )

    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("currency", "amount"), [("USD", "0.001"), ("JPY", "0.5"), ("KWD", "0.0001")])
def test_the_services_refuse_more_decimals_than_the_currency_allows(user, currency, amount):
    balance = balance_of(user, currency=currency, amount="0")
    before = ledger_state()

    with pytest.raises(InvalidInput) as refused:
        move("deposit", balance, amount)

    assert "amount" in refused.value.details
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_credit_beyond_what_the_balance_column_holds_is_refused_without_trace(user):
    balance = balance_of(user, amount="0")
    # Reaching NUMERIC(30, 4)'s limit 10^15 at a time would take 10^11 deposits: start from a near-full row,
    # forged past the guard that wants an entry for it.
    with ledger_guards_lifted():
        WalletBalance.objects.filter(pk=balance.pk).update(amount=Decimal("9" * 26))
    before = ledger_state()

    with pytest.raises(InvalidInput):
        move("deposit", balance, "1000000000000000")

    assert ledger_state() == before


# --- foreign exchange ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pair", "rate", "amount", "credit"),
    [
        (("USD", "JPY"), "158.45", "10.01", "1586"),
        (("USD", "JPY"), "158.4599", "1.00", "158"),
        (("USD", "KWD"), "0.3075", "1.99", "0.611"),
        (("EUR", "USD"), "1.1", "0.09", "0.09"),  # 0.099 → 0.09, never rounded up to 0.10
        (("USD", "EUR"), "0.123456789012345678", "1000000000000000", "123456789012345.67"),
        (("IDR", "USD"), "0.0000645", "15500", "0.99"),  # 0.99975 → 0.99
    ],
)
def test_a_cross_currency_credit_is_amount_times_rate_rounded_down(user, pair, rate, amount, credit):
    base, quote = pair
    exchange_rate_create(base=base, quote=quote, rate=Decimal(rate), created_by=None)
    source = balance_of(user, currency=base, amount="1000000000000000")
    destination = balance_of(user, currency=quote, amount="0")

    out = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal(amount),
        owner=user,
        created_by=user,
    )

    incoming = Transaction.objects.get(wallet_balance=destination)
    assert incoming.amount == Decimal(credit)
    assert out.amount == Decimal(amount)
    assert out.exchange_rate == incoming.exchange_rate == Decimal(rate)
    assert out.reference == incoming.reference
    assert out.related_wallet_balance_id == destination.pk
    assert incoming.related_wallet_balance_id == source.pk
    assert_chain(source)
    assert_chain(destination)


@pytest.mark.django_db
def test_a_credit_that_rounds_down_to_zero_raises_amount_too_small(user):
    exchange_rate_create(base="KWD", quote="USD", rate=Decimal("3.252"), created_by=None)
    source = balance_of(user, currency="KWD", amount="1.000")
    destination = balance_of(user, currency="USD", amount="0")
    before = ledger_state()

    # 0.001 KWD × 3.252 = 0.003252 USD, less than a cent.
    with pytest.raises(AmountTooSmall):
        transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("0.001"),
            owner=user,
            created_by=user,
        )

    assert ledger_state() == before


@pytest.mark.django_db
def test_a_same_currency_transfer_records_no_rate(user, other_user):
    source = balance_of(user, amount="5.00")
    destination = balance_of(other_user, amount="0")

    out = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("5"),
        owner=user,
        created_by=user,
    )

    legs = Transaction.objects.filter(reference=out.reference)
    assert legs.count() == 2
    assert {leg.exchange_rate for leg in legs} == {None}
    assert {leg.type for leg in legs} == {TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN}


@pytest.mark.django_db
def test_a_closed_rate_is_not_used(user):
    ExchangeRate.objects.filter(base_id="USD", quote_id="JPY", valid_to__isnull=True).update(valid_to=timezone.now())
    source = balance_of(user, currency="USD", amount="5.00")
    destination = balance_of(user, currency="JPY", amount="0")
    before = ledger_state()

    with pytest.raises(RateUnavailable):
        transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("1"),
            owner=user,
            created_by=user,
        )

    assert ledger_state() == before


@pytest.mark.django_db
def test_a_new_rate_replaces_the_current_one_for_the_next_transfer(user):
    source = balance_of(user, currency="USD", amount="100.00")
    destination = balance_of(user, currency="EUR", amount="0")
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.9"), created_by=None)
    first = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("10"),
        owner=user,
        created_by=user,
    )

    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.8"), created_by=None)
    second = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("10"),
        owner=user,
        created_by=user,
    )

    assert first.exchange_rate == Decimal("0.9")
    assert second.exchange_rate == Decimal("0.8")
    destination.refresh_from_db()
    assert destination.amount == Decimal("17.00")
    assert ExchangeRate.objects.filter(base_id="USD", quote_id="EUR").exclude(valid_to=None).count() >= 2


@pytest.mark.django_db
@pytest.mark.parametrize(("base", "quote", "rate"), [("USD", "USD", "1"), ("USD", "EUR", "0"), ("USD", "XXX", "1")])
def test_exchange_rate_create_refuses_nonsense(base, quote, rate):
    current = ExchangeRate.objects.filter(valid_to__isnull=True).count()

    with pytest.raises(InvalidInput):
        exchange_rate_create(base=base, quote=quote, rate=Decimal(rate), created_by=None)

    assert ExchangeRate.objects.filter(valid_to__isnull=True).count() == current


# --- refunds ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refund_carries_the_payments_reference_and_lands_on_the_paying_balance(user, staff_user):
    balance = balance_of(user, amount="50.00")
    payment = move("pay", balance, "20.00")

    refund = refund_create(payment_id=payment.pk, amount=None, created_by=staff_user, source=TransactionSource.ADMIN)

    assert refund.type == TransactionType.REFUND
    assert refund.wallet_balance_id == balance.pk
    assert refund.reference == payment.reference
    assert refund.amount == Decimal("20.00")
    assert refund.source == TransactionSource.ADMIN
    assert refunded_amount(payment=payment) == Decimal("20.00")
    assert_chain(balance)


@pytest.mark.django_db
def test_partial_refunds_never_exceed_the_payment(user):
    balance = balance_of(user, amount="50.00")
    payment = move("pay", balance, "20.00")
    refund_create(payment_id=payment.pk, amount=Decimal("12.50"), created_by=None)
    before = ledger_state()

    with pytest.raises(RefundExceedsPayment):
        refund_create(payment_id=payment.pk, amount=Decimal("7.51"), created_by=None)

    assert ledger_state() == before
    refund_create(payment_id=payment.pk, amount=Decimal("7.50"), created_by=None)
    with pytest.raises(RefundExceedsPayment):
        refund_create(payment_id=payment.pk, amount=None, created_by=None)
    assert refunded_amount(payment=payment) == Decimal("20.00")
    assert_chain(balance)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_only_payments_are_refundable(user, kind):
    balance = balance_of(user, amount="50.00")
    entry = move(kind, balance, "1.00")
    before = ledger_state()

    with pytest.raises(NotRefundable):
        refund_create(payment_id=entry.pk, amount=None, created_by=None)

    assert ledger_state() == before


@pytest.mark.django_db
def test_a_refund_of_an_unknown_payment_raises_not_found():
    with pytest.raises(NotFound):
        refund_create(payment_id=uuid.uuid4(), amount=None, created_by=None)


@pytest.mark.django_db
def test_a_refund_into_a_frozen_wallet_raises_wallet_frozen(user):
    balance = balance_of(user, amount="50.00")
    payment = move("pay", balance, "20.00")
    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=True)
    before = ledger_state()

    with pytest.raises(WalletFrozen):
        refund_create(payment_id=payment.pk, amount=None, created_by=None)

    assert ledger_state() == before


# --- opening balances ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_opening_amount_is_booked_as_the_first_deposit(user):
    wallet = WalletFactory(owner=user)

    balance = balance_create(
        wallet_id=wallet.pk, owner=user, currency="KWD", initial_amount=Decimal("1.5"), created_by=user
    )

    (entry,) = assert_chain(balance)
    assert entry.type == TransactionType.DEPOSIT
    assert entry.amount == Decimal("1.5")
    assert balance.amount == Decimal("1.500")


@pytest.mark.django_db
def test_an_opening_refused_for_a_frozen_wallet_leaves_no_balance(user):
    wallet = WalletFactory(owner=user)
    wallet_set_frozen(wallet_id=wallet.pk, frozen=True)

    with pytest.raises(WalletFrozen):
        balance_create(wallet_id=wallet.pk, owner=user, currency="USD", initial_amount=Decimal("1"), created_by=user)

    assert not WalletBalance.objects.filter(wallet=wallet).exists()


@pytest.mark.django_db
def test_a_factory_balance_starts_empty_and_unnumbered():
    balance = BalanceFactory(wallet=WalletFactory(owner=UserFactory()), currency=Currency.objects.get(pk="JPY"))

    assert balance.amount == 0
    assert balance.last_sequence == 0
    assert assert_chain(balance) == []


@pytest.mark.django_db
@pytest.mark.parametrize("with_creator", [True, False], ids=["created-by-a-user", "by-the-system"])
def test_a_new_entry_is_built_as_the_model_builds_it(user, other_user, django_assert_num_queries, with_creator):
    from django.db.models import signals

    from transactions.posting.rows import new_entry as _new_entry

    creator = user if with_creator else None
    values = {
        "wallet_balance_id": uuid.uuid4(),
        "wallet_id": uuid.uuid4(),
        "owner_id": other_user.pk,
        "currency_id": "USD",
        "type": TransactionType.TRANSFER_OUT,
        "amount": Decimal("1.2300"),
        "balance_after": Decimal("8.7700"),
        "sequence": 7,
        "related_wallet_balance_id": uuid.uuid4(),
        "exchange_rate": Decimal("1.5"),
        "reference": uuid.uuid4(),
        "source": TransactionSource.ADMIN,
        "description": "d",
        "merchant": "",
    }
    # Skipping the model's pre_init and post_init signals changes nothing only while nobody listens.
    assert not signals.pre_init.has_listeners(Transaction)
    assert not signals.post_init.has_listeners(Transaction)

    built = Transaction(**values, created_by=creator)
    fast = _new_entry(**values, created_by=creator)

    fields = Transaction._meta.concrete_fields
    assert sorted(fast.__dict__) == sorted(built.__dict__)
    for field in fields:
        if field.name in ("id", "created_at"):
            continue
        assert getattr(fast, field.attname) == getattr(built, field.attname), field.name
    assert isinstance(fast.id, uuid.UUID) and fast.id != built.id
    assert type(fast.created_at) is type(built.created_at)  # the database's default, for bulk_create too
    assert (fast._state.adding, fast._state.db) == (built._state.adding, built._state.db)
    assert fast._state.adding
    with django_assert_num_queries(0):
        assert fast.created_by is creator
