"""Loyalty in the back office: the programmes (Finance manages them) with their totals, and the rewards, read-only.

A programme's funding balance is an ordinary balance of an operator's wallet:
Finance tops it up with the balance's adjustment (a DEPOSIT entry), and the
programme's page shows what is left of it. Nothing here moves money.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import User
from loyalty.models import BASIS_POINTS, LoyaltyProgram, Reward, RewardStatus
from loyalty.services import program_save
from transactions.models import Transaction
from wallet_project.admin_forms import StrictDecimalField
from wallet_project.admin_helpers import ReadOnlyAdminMixin, admin_changelist_url, admin_link, id_tail, uuid_or_none
from wallet_project.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, MAX_AMOUNT, format_amount
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallets.models import WalletBalance

_AMOUNT = DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)


def _total(expression: str | F | CombinedExpression, condition: Q) -> Coalesce:
    """Σ `expression` over a programme's rewards matching `condition`: one subquery per column, the whole page in
    one statement."""
    rewards = (
        Reward.objects.filter(condition, program=OuterRef("pk"))
        .order_by()
        .values("program")
        .annotate(total=Sum(expression))
        .values("total")
    )
    return Coalesce(Subquery(rewards, output_field=_AMOUNT), Value(Decimal(0)), output_field=_AMOUNT)


class FundingBalanceField(forms.ModelChoiceField):
    def label_from_instance(self, balance: WalletBalance) -> str:  # type: ignore[override]
        return f"{balance.wallet.owner.email} · {balance.wallet.name} · {balance.currency_id}"


class ProgramForm(ModelForm):
    """Strict number input for the cap (digits and one point); the model's `clean` checks it against the currency."""

    max_per_payment = StrictDecimalField(
        max_decimals=AMOUNT_DECIMAL_PLACES,
        max_value=MAX_AMOUNT,
        required=False,
        help_text="The most one payment earns, in the programme's currency (e.g. 5.00); empty: no cap.",
    )
    funding_balance = FundingBalanceField(
        queryset=WalletBalance.objects.filter(wallet__owner__is_staff=True).select_related("wallet__owner"),
        help_text="A balance of an operator (staff) account's wallet, in the programme's currency. Top it up with "
        "the balance's adjustment.",
    )

    class Meta:
        model = LoyaltyProgram
        fields = [
            "name",
            "currency",
            "earn_rate",
            "max_per_payment",
            "valid_from",
            "valid_to",
            "is_active",
            "funding_balance",
        ]


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(ReplicaChangelistMixin, admin.ModelAdmin):
    """Programmes: Finance adds and changes them (never deletes: rewards refer to them); changes apply to payments
    from then on, never to rewards already earned."""

    form = ProgramForm
    list_display = (
        "name",
        "currency",
        "rate_display",
        "cap_display",
        "valid_from",
        "valid_to",
        "is_active",
        "funding_link",
        "funding_left",
        "issued_display",
        "reversed_display",
        "pending_display",
        "unfunded_count",
        "unfunded_display",
    )
    list_filter = ("is_active", "currency")
    search_fields = ("name",)
    readonly_fields = (
        "funding_left",
        "issued_display",
        "reversed_display",
        "pending_display",
        "unfunded_count",
        "unfunded_display",
        "rewards_link",
        "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[LoyaltyProgram]:
        booked = Q(status=RewardStatus.BOOKED)
        return (
            super()
            .get_queryset(request)
            .select_related("currency", "funding_balance__wallet")
            .annotate(
                issued=_total("booked_amount", booked),
                # What LOYALTY_REVERSAL moved back: the reversal less what was cut before booking.
                moved_back=_total(F("reversed_amount") - F("amount") + F("booked_amount"), booked),
                pending_net=_total(F("amount") - F("reversed_amount"), Q(status=RewardStatus.PENDING)),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: LoyaltyProgram | None = None) -> tuple[str, ...]:
        # Rewards are kept in the programme's currency: it cannot change under them.
        return (*self.readonly_fields, "currency") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: LoyaltyProgram, form: Any, change: bool) -> None:
        program_save(program=obj, by=request.user)  # type: ignore[arg-type]

    def _money(self, program: LoyaltyProgram, amount: Decimal | None) -> str:
        if amount is None:
            return "—"
        return f"{format_amount(amount, program.currency.minor_unit)}\u00a0{program.currency_id}"

    @admin.display(description="rate", ordering="earn_rate")
    def rate_display(self, program: LoyaltyProgram) -> str:
        return f"{Decimal(program.earn_rate) * 100 / BASIS_POINTS:f} %"

    @admin.display(description="cap per payment")
    def cap_display(self, program: LoyaltyProgram) -> str:
        return self._money(program, program.max_per_payment) if program.max_per_payment is not None else "none"

    @admin.display(description="funding balance")
    def funding_link(self, program: LoyaltyProgram) -> str:
        balance = program.funding_balance
        return admin_link(WalletBalance, balance.pk, f"{balance.wallet.name} · {balance.currency_id}")

    @admin.display(description="funding left")
    def funding_left(self, program: LoyaltyProgram) -> str:
        balance = program.funding_balance
        return self._money(program, balance.amount - balance.held_amount)

    @admin.display(description="issued")
    def issued_display(self, program: LoyaltyProgram) -> str:
        return self._money(program, getattr(program, "issued", None))

    @admin.display(description="reversed")
    def reversed_display(self, program: LoyaltyProgram) -> str:
        return self._money(program, getattr(program, "moved_back", None))

    @admin.display(description="pending")
    def pending_display(self, program: LoyaltyProgram) -> str:
        return self._money(program, getattr(program, "pending_net", None))

    @admin.display(description="unfunded amount")
    def unfunded_display(self, program: LoyaltyProgram) -> str:
        return self._money(program, program.unfunded_amount)

    @admin.display(description="rewards")
    def rewards_link(self, program: LoyaltyProgram) -> str:
        return format_html('<a href="{}">Rewards</a>', admin_changelist_url(Reward, program=program.pk))


@admin.register(Reward)
class RewardAdmin(ReplicaChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Rewards are written by the payment's posting, the booking worker and refunds only."""

    list_display = (
        "short_id",
        "created_at",
        "owner_link",
        "program",
        "amount_display",
        "reversed_display",
        "unreversed_display",
        "status",
        "payment_link",
        "booked_at",
    )
    list_filter = ("status", "currency", "program")
    list_select_related = ("owner", "program", "currency")
    search_fields = ("owner__email",)
    search_help_text = "Owner email, or a reward, payment or reference id."
    fields = (
        "id",
        "program",
        "status",
        "owner_link",
        "balance_link",
        "payment_link",
        "reference",
        "amount_display",
        "booked_display",
        "reversed_display",
        "unreversed_display",
        "refunded_display",
        "funding_link",
        "created_at",
        "booked_at",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Reward], search_term: str
    ) -> tuple[QuerySet[Reward], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            return queryset.filter(Q(pk=some_id) | Q(payment_id=some_id) | Q(reference=some_id)), False
        return super().get_search_results(request, queryset, search_term)

    def _money(self, reward: Reward, amount: Decimal) -> str:
        return f"{format_amount(amount, reward.currency.minor_unit)}\u00a0{reward.currency_id}"

    @admin.display(description="reward", ordering="id")
    def short_id(self, reward: Reward) -> str:
        return id_tail(reward.pk)

    @admin.display(description="owner", ordering="owner__email")
    def owner_link(self, reward: Reward) -> str:
        return admin_link(User, reward.owner_id, reward.owner.email)

    @admin.display(description="balance")
    def balance_link(self, reward: Reward) -> str:
        return admin_link(WalletBalance, reward.wallet_balance_id, id_tail(reward.wallet_balance_id))

    @admin.display(description="payment")
    def payment_link(self, reward: Reward) -> str:
        return admin_link(Transaction, reward.payment_id, id_tail(reward.payment_id))

    @admin.display(description="funding balance")
    def funding_link(self, reward: Reward) -> str:
        return admin_link(WalletBalance, reward.funding_balance_id, id_tail(reward.funding_balance_id))

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, reward: Reward) -> str:
        return self._money(reward, reward.amount)

    @admin.display(description="booked")
    def booked_display(self, reward: Reward) -> str:
        return self._money(reward, reward.booked_amount)

    @admin.display(description="reversed")
    def reversed_display(self, reward: Reward) -> str:
        return self._money(reward, reward.reversed_amount)

    @admin.display(description="not reversed")
    def unreversed_display(self, reward: Reward) -> str:
        return self._money(reward, reward.unreversed_amount)

    @admin.display(description="payment refunded")
    def refunded_display(self, reward: Reward) -> str:
        return self._money(reward, reward.refunded_amount)
