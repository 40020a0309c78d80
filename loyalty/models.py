"""Loyalty programmes and the cashback rewards their payments earn.

Cashback is moved, never created: a booked reward is a LOYALTY credit on the
payer and a LOYALTY_FUNDING debit on the programme's funding balance, in one
posting, under the payment's reference (`loyalty.booking`).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from wallet_project.db import ClockTimestamp
from wallet_project.ids import uuid7
from wallet_project.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, decimals_of

# Basis points: a payment earns amount × earn_rate / 10,000.
MIN_EARN_RATE = 1
MAX_EARN_RATE = 5_000
BASIS_POINTS = 10_000


def _amount(**kwargs: object) -> models.DecimalField:
    return models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs)


class LoyaltyProgram(models.Model):
    """Cashback on the payments (and captures) of one currency, paid from a funding balance of the operator.

    At most one programme per currency is active (a partial unique index); it earns while `is_active` and
    `valid_from <= now < valid_to`. Changing it never changes a reward already earned: each reward keeps
    its own amount. `unfunded_count` and `unfunded_amount` count the rewards the funding balance could not
    cover. Managed by Finance in the back office.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100)
    currency = models.ForeignKey("wallets.Currency", on_delete=models.PROTECT, related_name="+")
    earn_rate = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_EARN_RATE), MaxValueValidator(MAX_EARN_RATE)],
        help_text="Basis points of each payment: 100 is 1 %, at most 5,000 (50 %).",
    )
    max_per_payment = _amount(
        null=True, blank=True, help_text="The most one payment earns, in the programme's currency; empty: no cap."
    )
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Empty: no end.")
    is_active = models.BooleanField(default=False)
    funding_balance = models.ForeignKey(
        "wallets.WalletBalance",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A balance in the programme's currency, in a wallet of an operator (staff) account; "
        "top it up with the balance's adjustment.",
    )
    unfunded_count = models.PositiveIntegerField(default=0)
    unfunded_amount = _amount(default=Decimal(0))
    created_at = models.DateTimeField(db_default=ClockTimestamp())

    class Meta:
        ordering = ["currency_id", "-created_at"]
        verbose_name = "loyalty programme"
        constraints = [
            models.UniqueConstraint(
                fields=["currency"],
                condition=Q(is_active=True),
                name="loyalty_one_active_program",
                violation_error_message="Another programme is already active in this currency: deactivate it first.",
            ),
            models.CheckConstraint(
                condition=Q(earn_rate__gte=MIN_EARN_RATE, earn_rate__lte=MAX_EARN_RATE), name="loyalty_earn_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(max_per_payment__isnull=True) | Q(max_per_payment__gt=0), name="loyalty_cap_positive"
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")),
                name="loyalty_valid_range",
                violation_error_message="The programme must end after it starts.",
            ),
            models.CheckConstraint(condition=Q(unfunded_amount__gte=0), name="loyalty_unfunded_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency_id})"

    def clean(self) -> None:
        """The funding balance is in the programme's currency, in a wallet of an operator (staff) account; the cap
        has the currency's digits at most."""
        super().clean()
        errors: dict[str, str] = {}
        funding = self.funding_balance if self.funding_balance_id else None
        if funding is not None and self.currency_id and funding.currency_id != self.currency_id:
            errors["funding_balance"] = f"The funding balance must be in {self.currency_id}, as the programme."
        elif funding is not None and not funding.wallet.owner.is_staff:
            errors["funding_balance"] = "The funding balance must be in a wallet of an operator (staff) account."
        if self.max_per_payment is not None and self.currency_id:
            minor_unit = self.currency.minor_unit
            if decimals_of(self.max_per_payment) > minor_unit:
                errors["max_per_payment"] = f"{self.currency_id} allows at most {minor_unit} decimal places."
        if errors:
            raise ValidationError(errors)


class RewardStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # earned with its payment; the worker books it within seconds
    BOOKED = "booked", "Booked"  # moved: LOYALTY on the payer, LOYALTY_FUNDING on the funding balance
    UNFUNDED = "unfunded", "Unfunded"  # the funding balance could not cover it: nothing was earned
    REVERSED = "reversed", "Reversed"  # refunded in full before it was booked: nothing left to book


class Reward(models.Model):
    """The cashback one payment (or one capture of a hold) earned: decided and written in its own transaction.

    `amount` never changes. Refunds take back `reversed_amount` of it in proportion: cut from a reward
    still pending, moved back (LOYALTY_REVERSAL, LOYALTY_RETURN) from a booked one; what a refund should
    have taken back but the payer no longer had is `unreversed_amount`. `booked_amount` is what the
    LOYALTY credit moved (`amount` less what was cut before booking), from `funding_balance`.
    `refunded_amount` is how much of the payment the reversals have followed. Every change of a reward
    happens under its payer balance's locks.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # Not a database foreign key: every payment in the currency would lock the programme's one row (FOR KEY
    # SHARE, at its commit), and programmes are never deleted; `reconcile` proves each reward's programme exists.
    # Nor indexed: the back office's totals per programme read all of a programme's rewards anyway.
    program = models.ForeignKey(
        LoyaltyProgram, on_delete=models.PROTECT, related_name="rewards", db_constraint=False, db_index=False
    )
    payment = models.OneToOneField("transactions.Transaction", on_delete=models.PROTECT, related_name="+")
    reference = models.UUIDField()  # the payment's: its LOYALTY entries carry it too
    wallet_balance = models.ForeignKey("wallets.WalletBalance", on_delete=models.PROTECT, related_name="+")
    # The owner repeats what the balance knows, so that a user's rewards are one index scan.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    currency = models.ForeignKey("wallets.Currency", on_delete=models.PROTECT, related_name="+")
    amount = _amount()
    booked_amount = _amount(default=Decimal(0))
    reversed_amount = _amount(default=Decimal(0))
    unreversed_amount = _amount(default=Decimal(0))
    refunded_amount = _amount(default=Decimal(0))
    status = models.CharField(max_length=8, choices=RewardStatus.choices, default=RewardStatus.PENDING)
    funding_balance = models.ForeignKey(
        "wallets.WalletBalance", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    booked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="reward_owner_history"),
            # The booking worker's queue: the pending rewards, oldest first.
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="reward_pending"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="reward_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=RewardStatus.values), name="reward_status_known"),
            models.CheckConstraint(
                condition=Q(reversed_amount__gte=0, unreversed_amount__gte=0, refunded_amount__gte=0)
                & Q(reversed_amount__lte=F("amount") - F("unreversed_amount")),
                name="reward_reversal_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(booked_amount__gte=0, booked_amount__lte=F("amount")), name="reward_booked_within_amount"
            ),
            # Booked: moved from a funding balance at a known time; otherwise nothing moved.
            models.CheckConstraint(
                condition=Q(
                    status="booked", booked_amount__gt=0, funding_balance__isnull=False, booked_at__isnull=False
                )
                | (~Q(status="booked") & Q(booked_amount=0)),
                name="reward_booked_has_money",
            ),
        ]

    def __str__(self) -> str:
        return f"Reward {self.amount.normalize():f} {self.currency_id} ({self.status})"

    @property
    def net_amount(self) -> Decimal:
        """What the payer keeps, or will once booked: the amount less what refunds took back (unfunded: nothing)."""
        if self.status == RewardStatus.UNFUNDED:
            return Decimal(0)
        return self.amount - self.reversed_amount

    @property
    def moved_back(self) -> Decimal:
        """What LOYALTY_REVERSAL entries took back from the payer (the rest of the reversal was cut while pending)."""
        if self.status != RewardStatus.BOOKED:
            return Decimal(0)
        return self.reversed_amount - (self.amount - self.booked_amount)
