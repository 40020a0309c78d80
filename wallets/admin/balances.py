"""Balances: adjusting one books a DEPOSIT or WITHDRAWAL entry, after a confirmation, with a reason.

Each balance shows what its holds reserve as of now (`held`, an expired hold
not yet swept counts for nothing) and what debits may use (`available`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from accounts.models import User
from transactions.holds.selectors import HELD_NOW, balances_with_held_now, held_now
from transactions.models import Hold, Transaction, TransactionSource
from transactions.services import deposit_create, withdrawal_create
from wallet_project.admin_forms import (
    SEEN,
    CurrencyAmountForm,
    ReasonField,
    StaleConfirmation,
    amount_field,
    confirm_hidden_fields,
    confirming,
    editing,
)
from wallet_project.admin_helpers import (
    ObjectPageAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    admin_link,
    frozen_badge,
    uuid_or_none,
)
from wallet_project.errors import DomainError
from wallet_project.money import format_amount
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallets.admin.common import add_domain_error, admin_link_to_entries, owner_label
from wallets.models import StaffAction, Wallet, WalletBalance
from wallets.services import staff_action_record


class BalanceAdjustmentForm(CurrencyAmountForm):
    """`seen` is the balance's last sequence when the confirmation was shown: any entry since then changes it."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"

    direction = forms.ChoiceField(
        choices=[(DEPOSIT, "Credit: deposit into the balance"), (WITHDRAWAL, "Debit: withdraw from the balance")],
        widget=forms.RadioSelect,
    )
    amount = amount_field(help_text="A positive amount in the balance's currency, e.g. 1000.00.")
    reason = ReasonField(help_text="Required. Kept on the ledger entry as its description, and in the history.")

    def __init__(self, *args: Any, balance: WalletBalance, **kwargs: Any) -> None:
        super().__init__(*args, currency=balance.currency, **kwargs)


@admin.register(WalletBalance)
class WalletBalanceAdmin(ReplicaChangelistMixin, ObjectPageAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Balances are read-only; an adjustment is a DEPOSIT or WITHDRAWAL entry booked by the services."""

    object_page = "adjust"  # adjust_view, has_adjust_permission

    list_display = (
        "__str__",
        "owner_link",
        "wallet_link",
        "wallet_state",
        "currency",
        "amount_display",
        "held_display",
        "available_display",
        "last_sequence",
        "updated_at",
    )
    list_filter = ("currency", "wallet__is_frozen")
    list_select_related = ("wallet__owner", "currency")
    search_fields = ("wallet__owner__email", "wallet__name")
    search_help_text = "Owner email, wallet name, or a balance or wallet id."
    fields = (
        "id",
        "wallet_link",
        "wallet_state",
        "owner_link",
        "currency",
        "amount_display",
        "held_display",
        "available_display",
        "last_sequence",
        "created_at",
        "updated_at",
        "entries_link",
        "holds_link",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WalletBalance]:
        # held as of now for every row in the page's one statement, not one query per balance with a hold due.
        return balances_with_held_now(super().get_queryset(request).select_related("wallet__owner", "currency"))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WalletBalance], search_term: str
    ) -> tuple[QuerySet[WalletBalance], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            return queryset.filter(pk=some_id) | queryset.filter(wallet_id=some_id), False
        return super().get_search_results(request, queryset, search_term)

    def has_adjust_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.adjust_balance")

    def adjust_view(self, request: HttpRequest, balance: WalletBalance) -> HttpResponse:
        """Book a DEPOSIT or WITHDRAWAL entry (source ADMIN, created_by the staff user) after a confirmation."""

        if request.method != "POST" or editing(request):
            initial = {name: request.POST.get(name, "") for name in ("direction", "amount", "reason")}
            form = BalanceAdjustmentForm(initial={k: v for k, v in initial.items() if v}, balance=balance)
            return self._render_adjust(request, balance, form)
        form = BalanceAdjustmentForm(request.POST, balance=balance)
        if not form.is_valid() or not self._precheck(balance, form):
            return self._render_adjust(request, balance, form)

        notice = ""
        if confirming(request):
            try:
                entry = self._book_adjustment(request, balance, form)
            except StaleConfirmation:
                notice = "The balance changed while you were confirming. Nothing was booked: check the new numbers."
                balance = self.get_object(request, str(balance.pk))
                if not self._precheck(balance, form):
                    return self._render_adjust(request, balance, form)
            except DomainError as exc:
                add_domain_error(form, exc, default_field="amount")
                balance.refresh_from_db(fields=["amount", "last_sequence"])
                return self._render_adjust(request, balance, form)
            else:
                minor_unit = balance.currency.minor_unit
                self.message_user(
                    request,
                    f"Booked: {_adjustment_summary(entry, minor_unit)}. The balance now holds "
                    f"{format_amount(entry.balance_after, minor_unit)} {entry.currency_id}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(admin_change_url(WalletBalance, balance.pk))
        return self._render_adjust(request, balance, form, confirm=True, notice=notice)

    def _precheck(self, balance: WalletBalance, form: BalanceAdjustmentForm) -> bool:
        """Refuse on the form what the service would refuse now (it decides again under the lock)."""
        if balance.wallet.is_frozen:
            form.add_error(
                None, f"Wallet {balance.wallet_id} is frozen; no money may move into or out of it. Unfreeze it first."
            )
            return False
        amount = form.cleaned_data["amount"]
        held = held_now(balance)
        if form.cleaned_data["direction"] == form.WITHDRAWAL and amount > balance.amount - held:
            minor_unit, currency = balance.currency.minor_unit, balance.currency_id
            holds = (
                f", of which {format_amount(held, minor_unit)} {currency} is reserved by holds "
                f"({format_amount(balance.amount - held, minor_unit)} {currency} available)"
                if held
                else ""
            )
            form.add_error(
                "amount",
                f"Balance {balance.pk} holds {format_amount(balance.amount, minor_unit)} {currency}{holds}; "
                f"{format_amount(amount, minor_unit)} {currency} was asked.",
            )
            return False
        return True

    def _book_adjustment(
        self, request: HttpRequest, balance: WalletBalance, form: BalanceAdjustmentForm
    ) -> Transaction:
        """Book the confirmed entry; raises StaleConfirmation (nothing written) if the balance moved since."""
        seen = form.cleaned_data[SEEN]
        reason = form.cleaned_data["reason"]
        minor_unit = balance.currency.minor_unit

        def check_and_record(entry: Transaction) -> None:
            # Under the balance's lock, in the booking's transaction: raising here writes nothing.
            if str(entry.sequence - 1) != seen:
                raise StaleConfirmation
            staff_action_record(
                staff=request.user,  # type: ignore[arg-type]
                action=StaffAction.Action.BALANCE_ADJUSTED,
                target=balance,
                reason=reason,
                details={
                    "direction": form.cleaned_data["direction"],
                    "amount": format_amount(entry.amount, minor_unit),
                    "currency": entry.currency_id,
                    "balance_before": format_amount(
                        entry.balance_after - entry.amount
                        if form.cleaned_data["direction"] == form.DEPOSIT
                        else entry.balance_after + entry.amount,
                        minor_unit,
                    ),
                    "balance_after": format_amount(entry.balance_after, minor_unit),
                    "entry_id": str(entry.pk),
                    "wallet_id": str(balance.wallet_id),
                },
            )
            self.log_change(request, balance, _adjustment_summary(entry, minor_unit))

        book = deposit_create if form.cleaned_data["direction"] == form.DEPOSIT else withdrawal_create
        return book(
            wallet_balance_id=balance.pk,
            amount=form.cleaned_data["amount"],
            owner=None,
            created_by=request.user,  # type: ignore[arg-type]
            source=TransactionSource.ADMIN,
            description=reason,
            on_booked=check_and_record,
        )

    def _render_adjust(
        self,
        request: HttpRequest,
        balance: WalletBalance,
        form: BalanceAdjustmentForm,
        *,
        confirm: bool = False,
        notice: str = "",
    ) -> TemplateResponse:
        minor_unit = balance.currency.minor_unit
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Adjust the {balance.currency_id} balance of wallet {balance.wallet.name}",
            "opts": self.opts,
            "original": balance,
            "wallet": balance.wallet,
            "owner_label": owner_label(balance.wallet.owner),
            "state_badge": frozen_badge(balance.wallet),
            "form": form,
            "amount_display": format_amount(balance.amount, minor_unit),
            "held_display": format_amount(held_now(balance), minor_unit),
            "available_display": format_amount(balance.amount - held_now(balance), minor_unit),
            "confirming": confirm,
            "notice": notice,
        }
        if confirm:
            amount = form.cleaned_data["amount"]
            deposit = form.cleaned_data["direction"] == form.DEPOSIT
            resulting = balance.amount + amount if deposit else balance.amount - amount
            context |= {
                "deposit": deposit,
                "change_display": format_amount(amount, minor_unit),
                "resulting_display": format_amount(resulting, minor_unit),
                "reason": form.cleaned_data["reason"],
                "hidden_fields": confirm_hidden_fields(form, seen=str(balance.last_sequence)),
            }
        return TemplateResponse(request, "admin/wallets/walletbalance/adjust.html", context)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, balance: WalletBalance) -> str:
        return format_amount(balance.amount, balance.currency.minor_unit)

    @admin.display(description="held (now)", ordering=HELD_NOW)
    def held_display(self, balance: WalletBalance) -> str:
        return format_amount(held_now(balance), balance.currency.minor_unit)

    @admin.display(description="available")
    def available_display(self, balance: WalletBalance) -> str:
        return format_amount(balance.amount - held_now(balance), balance.currency.minor_unit)

    @admin.display(description="holds")
    def holds_link(self, balance: WalletBalance) -> str:
        return format_html('<a href="{}">Holds</a>', admin_changelist_url(Hold, wallet_balance=balance.pk))

    @admin.display(description="wallet", ordering="wallet__name")
    def wallet_link(self, balance: WalletBalance) -> str:
        return admin_link(Wallet, balance.wallet_id, balance.wallet.name)

    @admin.display(description="wallet state", ordering="wallet__is_frozen")
    def wallet_state(self, balance: WalletBalance) -> str:
        return frozen_badge(balance.wallet)

    @admin.display(description="owner", ordering="wallet__owner__email")
    def owner_link(self, balance: WalletBalance) -> str:
        return admin_link(User, balance.wallet.owner_id, balance.wallet.owner.email)

    @admin.display(description="ledger")
    def entries_link(self, balance: WalletBalance) -> str:
        return admin_link_to_entries(wallet_balance=balance.pk)


def _adjustment_summary(entry: Transaction, minor_unit: int) -> str:
    return (
        f"{entry.get_type_display()} of {format_amount(entry.amount, minor_unit)} "
        f"{entry.currency_id} (entry {entry.pk}): {entry.description}"
    )
