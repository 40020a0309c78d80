"""The dashboard's figures, read from the database.

Each is one aggregate statement, or one that reads a bounded number of rows
through an index: nothing here loops over balances or ledger entries in
Python. What a figure costs on a large database, and which of them the
dashboard caches, is in docs/OPERATIONS.md ("The dashboard").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.db import connection
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate

from accounts.models import User
from backoffice.models import ReconcileRun
from events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from loyalty.models import LoyaltyProgram
from transactions.holds.selectors import HELD_NOW, balances_with_held_now
from transactions.models import Transaction, TransactionType
from wallet_project.ids import uuid7_floor
from wallets.models import Currency, Wallet, WalletBalance

# What the chart counts: one entry per movement. A transfer's credit and cashback's funding side are the other
# leg of a movement already counted by its first, so they are left out.
MOVEMENT_KINDS: tuple[tuple[str, str, tuple[TransactionType, ...]], ...] = (
    ("deposits", "Deposits and withdrawals", (TransactionType.DEPOSIT, TransactionType.WITHDRAWAL)),
    ("payments", "Payments and captures", (TransactionType.PAYMENT, TransactionType.CAPTURE)),
    ("transfers", "Transfers", (TransactionType.TRANSFER_OUT,)),
    ("refunds", "Refunds", (TransactionType.REFUND,)),
    ("cashback", "Cashback", (TransactionType.LOYALTY, TransactionType.LOYALTY_REVERSAL)),
)
_KIND_OF_TYPE = {entry_type.value: slug for slug, _, types in MOVEMENT_KINDS for entry_type in types}
# An entry's id carries the web worker's clock, its created_at the database's: the id range is widened by this
# much on both sides, and created_at decides.
ID_CLOCK_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class Holding:
    """The money of one currency: in how many balances, in all, and how much of it holds reserve now."""

    currency: str
    minor_unit: int
    balances: int
    total: Decimal
    held: Decimal

    @property
    def available(self) -> Decimal:
        return self.total - self.held


def holdings_by_currency() -> list[Holding]:
    """Every currency's balances added up, held as the balance pages show it (an expired hold holds nothing):
    one GROUP BY over the balances, whose held-now subquery runs only for balances with a hold due."""
    rows = (
        balances_with_held_now(WalletBalance.objects.all())
        .order_by()
        .values_list("currency_id", "currency__minor_unit")
        .annotate(balances=Count("pk"), total=Sum("amount"), held=Sum(HELD_NOW))
        .order_by("currency_id")
    )
    return [
        Holding(currency=code, minor_unit=minor_unit, balances=count, total=total, held=held)
        for code, minor_unit, count, total, held in rows
    ]


def movements_by_day(*, since: datetime, until: datetime) -> dict[date, Counter[str]]:
    """The movements booked in [since, until), counted per UTC day and kind (`MOVEMENT_KINDS`).

    One GROUP BY over the range of the ledger's primary key that those times
    cover (`uuid7_floor`): PostgreSQL reads the index from the first entry of
    the range, never the older ledger, and the ledger needs no index on
    `created_at`. At most one row per day and entry type comes back.
    """
    rows = (
        Transaction.objects.filter(
            pk__gte=uuid7_floor(since - ID_CLOCK_MARGIN),
            pk__lt=uuid7_floor(until + ID_CLOCK_MARGIN),
            created_at__gte=since,
            created_at__lt=until,
            type__in=list(_KIND_OF_TYPE),
        )
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .order_by()
        .values_list("day", "type")
        .annotate(entries=Count("pk"))
    )
    days: dict[date, Counter[str]] = {}
    for day, entry_type, entries in rows:
        days.setdefault(day, Counter())[_KIND_OF_TYPE[entry_type]] += entries
    return days


@dataclass(frozen=True)
class LargeBalance:
    balance_id: UUID
    currency: str
    minor_unit: int
    amount: Decimal
    wallet_id: UUID
    wallet_name: str
    wallet_frozen: bool
    owner_id: UUID
    owner_email: str
    owner_name: str


def largest_balances(*, per_currency: int) -> list[LargeBalance]:
    """The `per_currency` largest balances of each currency (amounts of two currencies do not compare).

    One statement: for each currency, its balances through the index on
    `currency_id`, kept to the top few as they are read (a bounded sort), then
    their wallets and owners. A window function over every balance sorted the
    whole table instead, on disk past `work_mem`.
    """
    balance, wallet, owner, currency = (
        WalletBalance._meta.db_table,
        Wallet._meta.db_table,
        User._meta.db_table,
        Currency._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT top.id, currency.code, currency.minor_unit, top.amount,"  # noqa: S608 - our own table names
            "       wallet.id, wallet.name, wallet.is_frozen, owner.id, owner.email, owner.name"
            f" FROM {currency} AS currency"
            " CROSS JOIN LATERAL ("
            f"   SELECT id, wallet_id, amount FROM {balance}"
            "    WHERE currency_id = currency.code AND amount > 0"
            "    ORDER BY amount DESC, id LIMIT %s"
            " ) AS top"
            f" JOIN {wallet} AS wallet ON wallet.id = top.wallet_id"
            f" JOIN {owner} AS owner ON owner.id = wallet.owner_id"
            " ORDER BY currency.code, top.amount DESC, top.id",
            [per_currency],
        )
        return [LargeBalance(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class FrozenWallet:
    wallet_id: UUID
    name: str
    owner_id: UUID
    owner_email: str
    created_at: datetime


@dataclass(frozen=True)
class FrozenWallets:
    count: int
    newest: list[FrozenWallet]


def frozen_wallets(*, shown: int) -> FrozenWallets:
    """How many wallets are frozen, and the `shown` newest of them: two reads of their partial index."""
    frozen = Wallet.objects.filter(is_frozen=True)
    newest = frozen.select_related("owner").order_by("-created_at", "-id")[:shown]
    return FrozenWallets(
        count=frozen.count(),
        newest=[
            FrozenWallet(
                wallet_id=wallet.pk,
                name=wallet.name,
                owner_id=wallet.owner_id,
                owner_email=wallet.owner.email,
                created_at=wallet.created_at,
            )
            for wallet in newest
        ],
    )


@dataclass(frozen=True)
class FailedDeliveries:
    count: int
    newest_at: datetime | None


def failed_deliveries() -> FailedDeliveries:
    """Webhook deliveries whose retries ran out: counted on their partial index, with the newest one's time."""
    failed = WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).aggregate(
        count=Count("pk"), newest=Max("created_at")
    )
    return FailedDeliveries(count=failed["count"], newest_at=failed["newest"])


def disabled_endpoints() -> int:
    """Webhook endpoints turned off after failing for too long (a table of one row per integration)."""
    return WebhookEndpoint.objects.filter(is_enabled=False).count()


@dataclass(frozen=True)
class UnfundedProgram:
    program_id: UUID
    name: str
    currency: str
    minor_unit: int
    is_active: bool
    unfunded_count: int
    unfunded_amount: Decimal
    funding_balance_id: UUID
    funding_available: Decimal


def unfunded_programs() -> list[UnfundedProgram]:
    """The loyalty programmes whose funding balance could not cover some rewards, with what it has left now."""
    programs = (
        LoyaltyProgram.objects.filter(unfunded_count__gt=0)
        .select_related("currency", "funding_balance")
        .order_by("-is_active", "currency_id", "name")
    )
    return [
        UnfundedProgram(
            program_id=program.pk,
            name=program.name,
            currency=program.currency_id,
            minor_unit=program.currency.minor_unit,
            is_active=program.is_active,
            unfunded_count=program.unfunded_count,
            unfunded_amount=program.unfunded_amount,
            funding_balance_id=program.funding_balance_id,
            funding_available=program.funding_balance.amount - program.funding_balance.held_amount,
        )
        for program in programs
    ]


def last_reconcile_run() -> ReconcileRun | None:
    """The newest run of `manage.py reconcile`, by its primary key."""
    return ReconcileRun.objects.order_by("-pk").first()
