"""A batch: up to 1,000 deposits, withdrawals, payments and transfers booked as one posting, all or nothing.

Each movement is planned as its own endpoint plans it (`services.one_balance_plan`,
`services.transfer_plan`: ownership, precision, the destination, the rate), under a
reference of its own, and the batch is posted once (`planning.plan_and_post_parts`):
one transaction, the locks of every balance it touches taken once each in sorted
order, each movement checked and moved on the balances as the movements before it
left them, a balance moved several times written once. Its entries, chain and
events are those the movements would have had one by one; its payments earn
cashback as a payment does (`loyalty.earning.EarnEachRider`). The batch's own id
names the posting (the audit line's `posting`); each movement keeps its reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from uuid import UUID

from loyalty.earning import EarnEachRider
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.posting.movement import Booking, PartsRefused
from transactions.posting.planning import Plan, plan_and_post_parts
from transactions.services import one_balance_plan, transfer_plan
from wallet_project.errors import DomainError, InvalidInput
from wallet_project.ids import uuid7

if TYPE_CHECKING:
    from accounts.models import User

MAX_MOVEMENTS = 1_000

DEPOSIT, WITHDRAW, PAYMENT, TRANSFER = "deposit", "withdraw", "payment", "transfer"
# A movement's `type` in a batch is the name of its own endpoint; the entry type of the single-balance ones.
ONE_BALANCE_TYPES = {
    DEPOSIT: TransactionType.DEPOSIT,
    WITHDRAW: TransactionType.WITHDRAWAL,
    PAYMENT: TransactionType.PAYMENT,
}
MOVEMENT_TYPES = (*ONE_BALANCE_TYPES, TRANSFER)


@dataclass(frozen=True, slots=True)
class Batch:
    """A booked batch: its id, and the entry each movement answers with (as its own endpoint would), in order."""

    id: UUID
    entries: list[Transaction]


OnBatchBooked = Callable[[Batch], None]


def batch_create(
    *,
    movements: Sequence[Mapping[str, Any]],
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBatchBooked | None = None,
) -> Batch:
    """Book `movements`, each `{type, ...the fields of its endpoint}` as validated, as one posting: all or none.

    A movement without a description of its own says the batch's. `on_booked` gets the batch inside its
    database transaction. A refusal names its movement: `details.index`, or for invalid movements (400)
    `details.movements`, their messages by index. Raises InvalidInput, InactiveAccount, NotFound, MfaRequired
    (the request's guard, on the batch's outflows together), SameBalance, RateUnavailable, AmountTooSmall,
    WalletFrozen, InsufficientFunds, LockTimeout, ServiceUnavailable.
    """
    if not 1 <= len(movements) <= MAX_MOVEMENTS:
        message = f"A batch has 1 to {MAX_MOVEMENTS:,} movements; this one has {len(movements):,}."
        raise InvalidInput(message, details={"movements": [message]})
    references = [uuid7() for _ in movements]
    balance_ids: dict[UUID, None] = {}
    plans = [
        _plan(movement, owner, reference, balance_ids)
        for movement, reference in zip(movements, references, strict=True)
    ]
    batch_id = uuid7()
    payments = any(movement["type"] == PAYMENT for movement in movements)

    def posted(entries: Sequence[Transaction]) -> None:
        assert on_booked is not None
        on_booked(Batch(batch_id, _answers(entries, references)))

    booking = Booking(
        created_by,
        source,
        description,
        reference=batch_id,
        on_posted=None if on_booked is None else posted,
        rider=EarnEachRider() if payments else None,
    )
    transfers = any(movement["type"] == TRANSFER for movement in movements)
    try:
        entries = plan_and_post_parts(list(balance_ids), plans, booking, with_rate=transfers)
    except PartsRefused as refused:
        raise _answer(refused) from refused
    return Batch(batch_id, _answers(entries, references))


def _plan(movement: Mapping[str, Any], owner: User | None, reference: UUID, balance_ids: dict[UUID, None]) -> Plan:
    """The movement's plan, as its own endpoint's service makes it; its balances are added to `balance_ids`."""
    kind = movement["type"]
    description = movement.get("description") or None  # none of its own: the batch's
    if kind == TRANSFER:
        source_id = _uuid(movement["from_wallet_balance_id"])
        destination_id = _uuid(movement["to_wallet_balance_id"])
        balance_ids[source_id] = balance_ids[destination_id] = None
        return transfer_plan(
            source_id, destination_id, movement["amount"], owner, reference=reference, description=description
        )
    balance_id = _uuid(movement["wallet_balance_id"])
    balance_ids[balance_id] = None
    return one_balance_plan(
        ONE_BALANCE_TYPES[kind],
        balance_id,
        movement["amount"],
        owner,
        reference=reference,
        description=description,
        merchant=movement["merchant"] if kind == PAYMENT else None,
    )


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))  # callers outside the API may pass text


def _answers(entries: Sequence[Transaction], references: Sequence[UUID]) -> list[Transaction]:
    """Each movement's answer: the first entry under its reference (a transfer's TRANSFER_OUT), in order."""
    first: dict[UUID, Transaction] = {}
    for entry in entries:
        first.setdefault(entry.reference, entry)
    return [first[reference] for reference in references]


def _answer(refused: PartsRefused) -> DomainError:
    """The refusal of a batch, naming its movements: every invalid one (400), else the first not found (404),
    else the first refused by a rule (422), in the contract's order of checks."""
    invalid = [(index, error) for index, error in refused.refusals if error.status_code == HTTPStatus.BAD_REQUEST]
    if invalid:
        return InvalidInput(
            "Some movements are invalid; see details.",
            details={
                "movements": {
                    str(index): error.details or {"non_field_errors": [error.message]} for index, error in invalid
                }
            },
        )
    not_found = [refusal for refusal in refused.refusals if refusal[1].status_code == HTTPStatus.NOT_FOUND]
    index, error = (not_found or refused.refusals)[0]
    return type(error)(f"Movement {index}: {error.message}", details={"index": index, **error.details})
