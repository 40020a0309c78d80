"""Currencies, exchange rates, wallets and their balances."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from wallet_project.db import ClockTimestamp
from wallet_project.money import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    RATE_DECIMAL_PLACES,
    RATE_MAX_DIGITS,
    format_rate,
)


class Currency(models.Model):
    """An ISO 4217 currency; `minor_unit` is how many decimals its amounts have (USD 2, JPY 0, KWD 3)."""

    code = models.CharField(max_length=3, primary_key=True)
    name = models.CharField(max_length=64)
    minor_unit = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "currencies"
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^[A-Z]{3}$"), name="currency_code_iso"),
            models.CheckConstraint(
                condition=Q(minor_unit__lte=AMOUNT_DECIMAL_PLACES), name="currency_minor_unit_storable"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class ExchangeRate(models.Model):
    """How many `quote` one `base` buys. The current rate of a pair is the one with no `valid_to`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    base = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="rates_as_base")
    quote = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="rates_as_quote")
    rate = models.DecimalField(max_digits=RATE_MAX_DIGITS, decimal_places=RATE_DECIMAL_PLACES)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["base", "quote", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchangerate_rate_positive"),
            models.CheckConstraint(condition=~Q(base=models.F("quote")), name="exchangerate_distinct_pair"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="exchangerate_valid_range",
            ),
            # At most one current rate per ordered pair.
            models.UniqueConstraint(
                fields=["base", "quote"], condition=Q(valid_to__isnull=True), name="exchangerate_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.base_id}→{self.quote_id} {format_rate(self.rate)}"


class Wallet(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallets")
    name = models.CharField(max_length=100)
    is_frozen = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="wallet_name_unique_per_owner")]
        # The dashboard's frozen wallets, counted and listed without reading every wallet: few rows, and a
        # wallet's row changes only when it is frozen or unfrozen.
        indexes = [
            models.Index(fields=["-created_at", "-id"], condition=Q(is_frozen=True), name="wallet_frozen_newest")
        ]
        permissions = [("freeze_wallet", "Can freeze and unfreeze wallets")]

    def __str__(self) -> str:
        return self.name


class WalletBalance(models.Model):
    """One currency's balance in a wallet. Only the posting engine writes `amount`, `last_sequence` and the holds'
    two columns.

    `held_amount` is what the balance's active holds still reserve (the remainders of the holds whose status
    is `active`, including any past `expires_at` that no movement or sweep has released yet); debits and new
    holds may use `amount − held_amount` only. `hold_due_at` is never later than the earliest `expires_at` of
    those holds (NULL: none): a movement that locks a balance whose `hold_due_at` has passed releases the
    expired holds first, and one whose `hold_due_at` is in the future pays nothing for its holds.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="balances")
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(0))
    # The `sequence` of this balance's newest ledger entry (0: none yet).
    last_sequence = models.BigIntegerField(default=0)
    held_amount = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(0), db_default=Decimal(0)
    )
    hold_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(db_default=ClockTimestamp())

    class Meta:
        ordering = ["currency_id"]
        constraints = [
            models.UniqueConstraint(fields=["wallet", "currency"], name="walletbalance_one_per_currency"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="walletbalance_amount_non_negative"),
            models.CheckConstraint(condition=Q(last_sequence__gte=0), name="walletbalance_sequence_non_negative"),
            # Reserved money is part of the balance: never negative, never more than the balance holds.
            models.CheckConstraint(
                condition=Q(held_amount__gte=0, held_amount__lte=models.F("amount")), name="walletbalance_held_within"
            ),
        ]
        # The expiry sweeper's look-up: balances with a hold due, the earliest first.
        indexes = [
            models.Index(fields=["hold_due_at"], condition=Q(hold_due_at__isnull=False), name="walletbalance_hold_due")
        ]
        # Adjusting books a DEPOSIT or WITHDRAWAL entry through transactions.services; nobody types an amount.
        permissions = [("adjust_balance", "Can adjust balances with a ledger entry")]

    def __str__(self) -> str:
        return f"{self.wallet} {self.currency_id}"


class StaffAction(models.Model):
    """One back-office action that moved money, set a rate, froze a wallet, voided a hold or reset a user's second
    factor: who, what, on what, and why.

    Written in the same database transaction as the action it records
    (wallets.services.staff_action_record); read-only in the admin.
    """

    class Action(models.TextChoices):
        RATE_SET = "rate_set", "Exchange rate set"
        BALANCE_ADJUSTED = "balance_adjusted", "Balance adjusted"
        REFUND = "refund", "Payment refunded"
        WALLET_FROZEN = "wallet_frozen", "Wallet frozen"
        WALLET_UNFROZEN = "wallet_unfrozen", "Wallet unfrozen"
        HOLD_VOIDED = "hold_voided", "Hold voided"
        MFA_RESET = "mfa_reset", "Two-factor authentication reset"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    target_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT, related_name="+")
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200)
    reason = models.CharField(max_length=255)
    # What changed, amounts as decimal strings (old and new rate, balance before and after, entry ids).
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["staff", "-created_at"], name="staffaction_staff_created"),
            models.Index(fields=["action", "-created_at"], name="staffaction_action_created"),
            models.Index(fields=["target_type", "target_id"], name="staffaction_target"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.target_repr}"
