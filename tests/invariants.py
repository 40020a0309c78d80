"""Assertions of the ledger invariants (DESIGN.md, "Invariants the code and the database both hold").

Any test that moves money may end with `assert_ledger_invariants()`: it reads
the balances and entries back from the database and checks, independently of
the services' own arithmetic, that

* every balance is non-negative, equals Σ credits − Σ debits of its entries and
  its newest `balance_after`, and its `last_sequence` is its entry count;
* each balance's entries have the sequences 1..n and form an unbroken
  `balance_after` chain;
* every transfer reference has exactly two legs, one TRANSFER_OUT and one
  TRANSFER_IN, pointing at each other, and the credit is the debit times the
  recorded rate rounded down to the destination's minor unit (equal, with no
  rate, between two balances of one currency);
* no payment has been refunded beyond its amount.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal, localcontext
from uuid import UUID

from transactions.models import CREDIT_TYPES, Transaction, TransactionType
from wallets.models import Currency, WalletBalance

TRANSFER_TYPES = (TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN)


def _round_down(amount: Decimal, minor_unit: int) -> Decimal:
    # Our own arithmetic, not wallet_project.money: the check must not share the code it checks.
    with localcontext() as context:
        context.prec = 100
        return amount.quantize(Decimal(1).scaleb(-minor_unit), rounding=ROUND_DOWN)


def _signed(entry: Transaction) -> Decimal:
    return entry.amount if entry.type in CREDIT_TYPES else -entry.amount


def assert_balance_chains(balance_ids: Iterable[UUID] | None = None) -> None:
    """Each balance: amount ≥ 0, amount == Σ credits − Σ debits, sequences 1..n, `balance_after` chained."""
    balances = WalletBalance.objects.all()
    if balance_ids is not None:
        balances = balances.filter(pk__in=list(balance_ids))
    entries_of: dict[UUID, list[Transaction]] = defaultdict(list)
    for entry in Transaction.objects.filter(wallet_balance__in=balances).order_by("wallet_balance_id", "sequence"):
        entries_of[entry.wallet_balance_id].append(entry)

    for balance in balances:
        entries = entries_of[balance.pk]
        assert balance.amount >= 0, f"balance {balance.pk} is negative: {balance.amount}"
        sequences = [entry.sequence for entry in entries]
        assert sequences == list(range(1, len(entries) + 1)), f"balance {balance.pk}: sequences {sequences}"
        assert balance.last_sequence == len(entries), (
            f"balance {balance.pk}: last_sequence {balance.last_sequence}, {len(entries)} entries"
        )
        running = Decimal(0)
        for entry in entries:
            running += _signed(entry)
            assert entry.balance_after == running, (
                f"balance {balance.pk}: entry {entry.sequence} ({entry.type} {entry.amount}) says "
                f"{entry.balance_after}, the chain gives {running}"
            )
            assert entry.currency_id == balance.currency_id and entry.wallet_id == balance.wallet_id
        assert balance.amount == running, f"balance {balance.pk} holds {balance.amount}; its entries sum to {running}"


def assert_transfers_paired(balance_ids: Iterable[UUID] | None = None) -> None:
    """Each transfer reference: exactly one OUT and one IN leg, crossed, credit == round_down(debit × rate)."""
    legs = Transaction.objects.filter(type__in=TRANSFER_TYPES)
    if balance_ids is not None:
        references = legs.filter(wallet_balance_id__in=list(balance_ids)).values("reference")
        legs = legs.filter(reference__in=references)
    minor_units = dict(Currency.objects.values_list("code", "minor_unit"))
    legs_of: dict[UUID, list[Transaction]] = defaultdict(list)
    for leg in legs:
        legs_of[leg.reference].append(leg)

    for reference, pair in legs_of.items():
        assert sorted(leg.type for leg in pair) == [TransactionType.TRANSFER_IN, TransactionType.TRANSFER_OUT], (
            f"transfer {reference} has legs {[leg.type for leg in pair]}"
        )
        debit = next(leg for leg in pair if leg.type == TransactionType.TRANSFER_OUT)
        credit = next(leg for leg in pair if leg.type == TransactionType.TRANSFER_IN)
        assert debit.related_wallet_balance_id == credit.wallet_balance_id, (
            f"transfer {reference}: OUT points elsewhere"
        )
        assert credit.related_wallet_balance_id == debit.wallet_balance_id, f"transfer {reference}: IN points elsewhere"
        assert debit.wallet_balance_id != credit.wallet_balance_id, f"transfer {reference} moves within one balance"
        assert debit.exchange_rate == credit.exchange_rate, f"transfer {reference}: the legs record different rates"
        if debit.currency_id == credit.currency_id:
            assert debit.exchange_rate is None, f"transfer {reference}: a rate within one currency"
            assert credit.amount == debit.amount, f"transfer {reference}: {debit.amount} out, {credit.amount} in"
        else:
            assert debit.exchange_rate is not None, f"transfer {reference}: no rate between two currencies"
            with localcontext() as context:
                context.prec = 100
                expected = _round_down(debit.amount * debit.exchange_rate, minor_units[credit.currency_id])
            assert credit.amount == expected, (
                f"transfer {reference}: {debit.amount} {debit.currency_id} × {debit.exchange_rate} credited "
                f"{credit.amount} {credit.currency_id}, expected {expected}"
            )


def assert_refunds_within_payments() -> None:
    """No payment has been refunded beyond its amount (refunds carry the payment's reference)."""
    payments = {
        (entry.reference, entry.wallet_balance_id): entry.amount
        for entry in Transaction.objects.filter(type=TransactionType.PAYMENT)
    }
    refunded: dict[tuple[UUID, UUID], Decimal] = defaultdict(Decimal)
    for entry in Transaction.objects.filter(type=TransactionType.REFUND):
        key = (entry.reference, entry.wallet_balance_id)
        assert key in payments, f"refund {entry.pk} refers to no payment of its balance"
        refunded[key] += entry.amount
    for key, total in refunded.items():
        assert total <= payments[key], f"payment {key[0]} of {payments[key]} was refunded {total}"


def assert_ledger_invariants(balance_ids: Iterable[UUID] | None = None) -> None:
    """All of the above, for these balances (default: every balance in the database)."""
    ids = None if balance_ids is None else list(balance_ids)
    assert_balance_chains(ids)
    assert_transfers_paired(ids)
    assert_refunds_within_payments()


def totals_by_currency() -> dict[str, Decimal]:
    """Σ of every balance's amount, per currency."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in WalletBalance.objects.values_list("currency_id", "amount"):
        totals[currency] += amount
    return dict(totals)
