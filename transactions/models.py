"""The ledger: one immutable row per balance per movement."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from wallet_project.db import ClockTimestamp  # also registers the `one_of` lookup
from wallet_project.ids import uuid7
from wallet_project.money import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    RATE_DECIMAL_PLACES,
    RATE_MAX_DIGITS,
    format_amount,
)


class TransactionType(models.TextChoices):
    DEPOSIT = "DEPOSIT", "Deposit"
    WITHDRAWAL = "WITHDRAWAL", "Withdrawal"
    PAYMENT = "PAYMENT", "Payment"
    TRANSFER_OUT = "TRANSFER_OUT", "Transfer out"
    TRANSFER_IN = "TRANSFER_IN", "Transfer in"
    REFUND = "REFUND", "Refund"
    CAPTURE = "CAPTURE", "Capture"  # of a hold: a payment whose amount was reserved first
    # Cashback (the `loyalty` app): moved from a programme's funding balance to the payer, never created.
    # Each pair shares the reference of the payment that earned it; the type says the direction.
    LOYALTY = "LOYALTY", "Loyalty cashback"  # credit, on the payer
    LOYALTY_FUNDING = "LOYALTY_FUNDING", "Loyalty funding"  # debit, on the funding balance
    LOYALTY_REVERSAL = "LOYALTY_REVERSAL", "Loyalty reversal"  # debit, on the payer: a refund takes cashback back
    LOYALTY_RETURN = "LOYALTY_RETURN", "Loyalty return"  # credit, on the funding balance: what the reversal took


CREDIT_TYPES = frozenset(
    {
        TransactionType.DEPOSIT,
        TransactionType.TRANSFER_IN,
        TransactionType.REFUND,
        TransactionType.LOYALTY,
        TransactionType.LOYALTY_RETURN,
    }
)
DEBIT_TYPES = frozenset(
    {
        TransactionType.WITHDRAWAL,
        TransactionType.PAYMENT,
        TransactionType.TRANSFER_OUT,
        TransactionType.CAPTURE,
        TransactionType.LOYALTY_FUNDING,
        TransactionType.LOYALTY_REVERSAL,
    }
)
# What staff may refund: money paid to a merchant, at once or through a hold.
REFUNDABLE_TYPES = frozenset({TransactionType.PAYMENT, TransactionType.CAPTURE})


class TransactionSource(models.TextChoices):
    API = "API", "API"
    ADMIN = "ADMIN", "Admin"
    SEED = "SEED", "Seed"
    SYSTEM = "SYSTEM", "System"


class ImmutableLedgerEntry(Exception):
    """Raised on any attempt to change or delete a ledger entry through the ORM."""


class TransactionQuerySet(models.QuerySet["Transaction"]):
    def update(self, **kwargs: object) -> int:
        raise ImmutableLedgerEntry("Ledger entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableLedgerEntry("Ledger entries cannot be deleted.")


class Transaction(models.Model):
    """A ledger entry. Written only by transactions.services, never changed or deleted.

    `owner`, `wallet` and `currency` repeat what the balance knows, so that the
    history of a user is one index scan (entries never move between balances).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # time-ordered: wallet_project/ids.py
    # The ledger's references are held by its chain trigger, not by foreign keys (migration 0015): the
    # trigger reads the entry's balance anyway, and checks that the balance exists and that the entry names
    # its wallet, owner and currency; triggers keep a balance that has entries, and a user who made entries
    # for others, from being deleted. A foreign key would cost each entry a look-up and a row lock at commit
    # (on the currency's and the owner's rows, which every concurrent movement shares).
    # No single-column indexes on these three: the history indexes below start with them.
    wallet_balance = models.ForeignKey(
        "wallets.WalletBalance", on_delete=models.PROTECT, related_name="entries", db_index=False, db_constraint=False
    )
    wallet = models.ForeignKey(
        "wallets.Wallet", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # No index: no query of ours looks entries up by currency alone.
    currency = models.ForeignKey(
        "wallets.Currency", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=16, choices=TransactionType.choices)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    balance_after = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    sequence = models.BigIntegerField()
    # No index: no query of ours looks entries up by their counterpart.
    related_wallet_balance = models.ForeignKey(
        "wallets.WalletBalance",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    exchange_rate = models.DecimalField(
        max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES, null=True, blank=True
    )
    reference = models.UUIDField(db_index=True)
    source = models.CharField(max_length=8, choices=TransactionSource.choices, default=TransactionSource.API)
    description = models.CharField(max_length=255, blank=True, default="")
    merchant = models.CharField(max_length=255, blank=True, default="")
    # Indexed only where someone else than the owner asked (staff, `txn_created_by_others`): the entries a
    # user asked for on their own balances keep them through their wallets already.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(db_default=ClockTimestamp())

    objects = TransactionQuerySet.as_manager()

    class Meta:
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        permissions = [
            ("refund_payment", "Can refund payments"),
            # The whole ledger with owners' emails, as a file: a policy decision of its own (docs/OPERATIONS.md).
            ("export_ledger", "Can export the ledger as CSV"),
        ]
        # No index on (created_at, id) alone: PostgreSQL would walk it for a user's history
        # (the owner being constant in the ORDER BY) and skip every newer entry of other users,
        # 350 times slower on a ledger of 1,000,000 entries (docs/PERFORMANCE.md, "Ledger indexes
        # fitted to the history"). The admin's list of the whole ledger sorts instead.
        # Each history filter has an index that starts with exactly its equality columns, owner
        # first (a history query always names the owner), then the page order. With
        # (wallet_balance, created_at, id) instead, PostgreSQL's generic plan for the prepared
        # query (prepared statements are on) read every entry of the balance and sorted them:
        # 237 ms for a balance of 43,000 entries (same section). The unique (wallet_balance, sequence)
        # index serves the chain trigger and the guard that keeps a balance with entries.
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="txn_owner_history"),
            models.Index(fields=["owner", "wallet", "-created_at", "-id"], name="txn_owner_wallet_history"),
            models.Index(fields=["owner", "wallet_balance", "-created_at", "-id"], name="txn_owner_balance_history"),
            # What keeps a staff member who booked entries for others from being deleted (migration 0015): the
            # entries whose actor is someone else than the owner (written `<` or `>`, so that no NULL is in it).
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__lt=F("owner")) | Q(created_by__gt=F("owner")),
                name="txn_created_by_others",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["wallet_balance", "sequence"], name="txn_sequence_unique_per_balance"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="txn_amount_positive"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="txn_balance_after_non_negative"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="txn_sequence_positive"),
            models.CheckConstraint(condition=Q(type__one_of=TransactionType.values), name="txn_type_known"),
            models.CheckConstraint(condition=Q(source__one_of=TransactionSource.values), name="txn_source_known"),
            models.CheckConstraint(
                condition=Q(type__one_of=[TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN])
                | Q(related_wallet_balance__isnull=True, exchange_rate__isnull=True),
                name="txn_only_transfers_have_counterparts",
            ),
            models.CheckConstraint(
                condition=~Q(type__one_of=[TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN])
                | Q(related_wallet_balance__isnull=False),
                name="txn_transfers_have_counterpart",
            ),
        ]

    def __str__(self) -> str:
        # The currency's minor unit when it is at hand; never a query just to name an entry.
        if Transaction.currency.is_cached(self):
            amount = format_amount(self.amount, self.currency.minor_unit)
        else:
            amount = f"{self.amount.normalize():f}"
        return f"{self.type} {amount} {self.currency_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ImmutableLedgerEntry("Ledger entries cannot be changed.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ImmutableLedgerEntry("Ledger entries cannot be deleted.")

    @property
    def is_credit(self) -> bool:
        return self.type in CREDIT_TYPES


class IdempotencyRecord(models.Model):
    """The stored answer to a money movement asked with an `Idempotency-Key` (API.md, "Idempotency").

    A 201 is written in the same database transaction as the movement; a 422 is
    written after the movement's rollback. `fingerprint` is a hash of the
    endpoint and the request as parsed, so "10" and "10.00" are the same request.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The answer's JSON text as sent: jsonb would reorder its keys, and a replay
    # must be the same body, byte for byte.
    response_body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code}"


class HoldStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CAPTURED = "captured", "Captured"
    VOIDED = "voided", "Voided"
    EXPIRED = "expired", "Expired"


class Hold(models.Model):
    """Money reserved on a balance, to be captured (in one or several parts), voided, or left to expire.

    Not a ledger entry: a hold moves no money. While `active`, its remainder
    (`amount − captured_amount`) counts in its balance's `held_amount`; each
    capture books a CAPTURE entry with the hold's `reference`. A hold past
    `expires_at` reserves nothing more, whatever its stored status says until
    a movement or the sweeper marks it `expired` (`status_now`). Written only
    by `transactions.holds.services`, under its balance's locks; once resolved,
    the database refuses any change to it (migration 0012).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    wallet_balance = models.ForeignKey("wallets.WalletBalance", on_delete=models.PROTECT, related_name="holds")
    # The owner repeats what the balance knows, so that a user's holds are one index scan.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    currency = models.ForeignKey("wallets.Currency", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    captured_amount = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(0)
    )
    status = models.CharField(max_length=8, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    description = models.CharField(max_length=255, blank=True, default="")
    merchant = models.CharField(max_length=255, blank=True, default="")
    reference = models.UUIDField(default=uuid7, unique=True)  # shared by the CAPTURE entries of this hold
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("void_hold", "Can void holds")]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="hold_owner_history"),
            # A balance's active holds: what expiry releases and what reconcile sums.
            models.Index(
                fields=["wallet_balance", "expires_at"],
                condition=Q(status=HoldStatus.ACTIVE),
                name="hold_active_by_balance",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(captured_amount__gte=0, captured_amount__lte=models.F("amount")),
                name="hold_captured_within_amount",
            ),
            models.CheckConstraint(condition=Q(status__in=HoldStatus.values), name="hold_status_known"),
            models.CheckConstraint(
                condition=Q(status=HoldStatus.ACTIVE, resolved_at__isnull=True)
                | (~Q(status=HoldStatus.ACTIVE) & Q(resolved_at__isnull=False)),
                name="hold_resolved_when_not_active",
            ),
            models.CheckConstraint(
                condition=~Q(status=HoldStatus.CAPTURED) | Q(captured_amount__gt=0), name="hold_captured_has_capture"
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="hold_expires_later"),
        ]

    def __str__(self) -> str:
        return f"Hold {self.amount.normalize():f} {self.currency_id} ({self.status_now})"

    @property
    def is_past_expiry(self) -> bool:
        return self.status == HoldStatus.ACTIVE and self.expires_at <= timezone.now()

    @property
    def status_now(self) -> str:
        """The status as of now: an active hold past `expires_at` is expired, swept or not."""
        return HoldStatus.EXPIRED if self.is_past_expiry else self.status

    @property
    def remaining(self) -> Decimal:
        """What the hold still reserves now: nothing once resolved or past its expiry."""
        if self.status_now != HoldStatus.ACTIVE:
            return Decimal(0)
        return self.amount - self.captured_amount

    @property
    def resolved_at_now(self):  # type: ignore[no-untyped-def]
        """When it stopped reserving money: its expiry, for an expired hold not yet swept."""
        return self.expires_at if self.is_past_expiry else self.resolved_at
