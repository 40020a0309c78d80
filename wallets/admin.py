"""Wallets, balances, currencies and exchange rates in the back office.

Nothing here writes an amount: a balance is adjusted by booking a DEPOSIT or
WITHDRAWAL entry through transactions.services, a wallet is frozen through
wallets.services.wallet_set_frozen, and a new exchange rate goes through
wallets.services.exchange_rate_create, which closes the current one. Old rates
and ledger-backed amounts are read-only for everyone, superusers included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from accounts.models import User
from transactions.models import Transaction, TransactionSource
from transactions.services import deposit_create, withdrawal_create
from wallet_project.admin_helpers import (
    ObjectPageAdminMixin,
    admin_change_url,
    admin_changelist_url,
    admin_link,
    uuid_or_none,
)
from wallet_project.errors import DomainError
from wallet_project.money import AmountError, format_amount, parse_amount
from wallets.models import Currency, ExchangeRate, Wallet, WalletBalance
from wallets.services import exchange_rate_create, wallet_set_frozen


class ReadOnlyAdminMixin:
    """No add, change or delete through the admin: these rows change only through the services."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def admin_link_to_entries(**filters: object) -> str:
    """A link to the ledger changelist filtered on `filters` (e.g. one balance's entries)."""
    return format_html('<a href="{}">Ledger entries</a>', admin_changelist_url(Transaction, **filters))


# --- currencies and exchange rates --------------------------------------------------------


@admin.register(Currency)
class CurrencyAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "minor_unit")
    search_fields = ("code", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: Currency | None = None) -> tuple[str, ...]:
        # Amounts already booked were checked against this minor unit: it cannot change under them.
        return ("code", "minor_unit") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ExchangeRateForm(forms.ModelForm):
    class Meta:
        model = ExchangeRate
        fields = ("base", "quote", "rate")
        help_texts = {"rate": "How many units of the quote currency one unit of the base currency buys."}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        base, quote, rate = cleaned.get("base"), cleaned.get("quote"), cleaned.get("rate")
        if base is not None and base == quote:
            self.add_error("quote", "Must differ from the base currency.")
        if rate is not None and (not rate.is_finite() or rate <= 0):
            self.add_error("rate", "Must be greater than zero.")
        return cleaned


class CurrentRateFilter(admin.SimpleListFilter):
    title = "current"
    parameter_name = "current"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Current"), ("no", "Closed (history)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ExchangeRate]) -> QuerySet[ExchangeRate]:
        if self.value() == "yes":
            return queryset.filter(valid_to__isnull=True)
        if self.value() == "no":
            return queryset.filter(valid_to__isnull=False)
        return queryset


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    """Rates are added, never edited: a new rate of a pair closes the current one, which stays for audit."""

    form = ExchangeRateForm
    list_display = ("pair", "rate_display", "valid_from", "valid_to", "is_current", "created_by")
    list_filter = (CurrentRateFilter, "base", "quote")
    list_select_related = ("created_by",)
    search_fields = ("=base__code", "=quote__code")
    date_hierarchy = "valid_from"
    readonly_fields = ("id", "base", "quote", "rate", "valid_from", "valid_to", "created_by")

    def get_fields(self, request: HttpRequest, obj: ExchangeRate | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("base", "quote", "rate")
        return ("id", "base", "quote", "rate", "valid_from", "valid_to", "created_by")

    def get_readonly_fields(self, request: HttpRequest, obj: ExchangeRate | None = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExchangeRate]:
        return super().get_queryset(request).select_related("base", "quote", "created_by")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ExchangeRate, form: forms.ModelForm, change: bool) -> None:
        if change:  # unreachable: nobody has the change permission
            raise PermissionDenied
        created = exchange_rate_create(
            base=obj.base_id,
            quote=obj.quote_id,
            rate=obj.rate,
            created_by=request.user,  # type: ignore[arg-type]
        )
        # The admin goes on to log and redirect with `obj`: make it the row the service wrote.
        obj.pk = created.pk
        obj.valid_from = created.valid_from
        obj.valid_to = created.valid_to
        obj.created_by = created.created_by
        obj._state.adding = False
        obj._state.db = created._state.db

    @admin.display(description="pair", ordering="base")
    def pair(self, rate: ExchangeRate) -> str:
        return f"{rate.base_id} → {rate.quote_id}"

    @admin.display(description="rate", ordering="rate")
    def rate_display(self, rate: ExchangeRate) -> str:
        return f"{rate.rate.normalize():f}"

    @admin.display(description="current", boolean=True)
    def is_current(self, rate: ExchangeRate) -> bool:
        return rate.valid_to is None


# --- wallets -------------------------------------------------------------------------------


class BalanceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WalletBalance
    fields = ("currency", "amount_display", "last_sequence", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[WalletBalance]:
        # The inline shows each row's str(), which names its wallet: without the join, one query per balance.
        return super().get_queryset(request).select_related("wallet", "currency")

    @admin.display(description="amount")
    def amount_display(self, balance: WalletBalance) -> str:
        return format_amount(balance.amount, balance.currency.minor_unit)


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    """Wallets are opened by their owners through the API; the back office reads them and freezes them."""

    list_display = ("name", "owner_link", "is_frozen", "created_at")
    list_filter = ("is_frozen",)
    list_select_related = ("owner",)
    search_fields = ("owner__email", "name")
    search_help_text = "Owner email, wallet name, or a wallet id."
    date_hierarchy = "created_at"
    fields = ("id", "owner", "name", "is_frozen", "created_at", "entries_link")
    readonly_fields = fields
    inlines = [BalanceInline]
    actions = ["freeze_wallets", "unfreeze_wallets"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Wallet]:
        return super().get_queryset(request).select_related("owner")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Wallet], search_term: str
    ) -> tuple[QuerySet[Wallet], bool]:
        wallet_id = uuid_or_none(search_term)
        if wallet_id is not None:
            return queryset.filter(pk=wallet_id), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Name and owner are the owner's business; freezing has its own permission and actions.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_freeze_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.freeze_wallet")

    def _set_frozen(self, request: HttpRequest, queryset: QuerySet[Wallet], *, frozen: bool) -> None:
        changed = 0
        for wallet_id, was_frozen in queryset.values_list("pk", "is_frozen"):
            if was_frozen == frozen:
                continue
            try:
                wallet = wallet_set_frozen(wallet_id=wallet_id, frozen=frozen)
            except DomainError as exc:
                self.message_user(request, f"Wallet {wallet_id}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, wallet, "Frozen" if frozen else "Unfrozen")
            changed += 1
        verb = "Froze" if frozen else "Unfroze"
        self.message_user(request, f"{verb} {changed} wallet(s).", messages.SUCCESS)

    @admin.action(description="Freeze selected wallets (no money in or out)", permissions=["freeze"])
    def freeze_wallets(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> None:
        self._set_frozen(request, queryset, frozen=True)

    @admin.action(description="Unfreeze selected wallets", permissions=["freeze"])
    def unfreeze_wallets(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> None:
        self._set_frozen(request, queryset, frozen=False)

    @admin.display(description="owner", ordering="owner__email")
    def owner_link(self, wallet: Wallet) -> str:
        return admin_link(User, wallet.owner_id, wallet.owner.email)

    @admin.display(description="ledger")
    def entries_link(self, wallet: Wallet) -> str:
        return admin_link_to_entries(wallet=wallet.pk)


# --- balances ----------------------------------------------------------------------------


class BalanceAdjustmentForm(forms.Form):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"

    direction = forms.ChoiceField(
        choices=[(DEPOSIT, "Deposit (credit the balance)"), (WITHDRAWAL, "Withdrawal (debit the balance)")],
        widget=forms.RadioSelect,
    )
    amount = forms.CharField(max_length=64, help_text="A positive amount in the balance's currency.")
    reason = forms.CharField(
        max_length=255, help_text="Why: kept on the ledger entry as its description, for the audit trail."
    )

    def clean_amount(self) -> Decimal:
        try:
            return parse_amount(self.cleaned_data["amount"])
        except AmountError as exc:
            raise ValidationError(str(exc)) from exc


@admin.register(WalletBalance)
class WalletBalanceAdmin(ObjectPageAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Balances are read-only; an adjustment is a DEPOSIT or WITHDRAWAL entry booked by the services."""

    object_page = "adjust"  # adjust_view, has_adjust_permission

    list_display = ("__str__", "owner_link", "wallet_link", "currency", "amount_display", "last_sequence", "updated_at")
    list_filter = ("currency",)
    list_select_related = ("wallet__owner", "currency")
    search_fields = ("wallet__owner__email", "wallet__name")
    search_help_text = "Owner email, wallet name, or a balance or wallet id."
    fields = (
        "id",
        "wallet_link",
        "owner_link",
        "currency",
        "amount_display",
        "last_sequence",
        "created_at",
        "updated_at",
        "entries_link",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WalletBalance]:
        return super().get_queryset(request).select_related("wallet__owner", "currency")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WalletBalance], search_term: str
    ) -> tuple[QuerySet[WalletBalance], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            return queryset.filter(pk=some_id) | queryset.filter(wallet_id=some_id), False
        return super().get_search_results(request, queryset, search_term)

    def has_adjust_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.adjust_balance")

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Book a DEPOSIT or WITHDRAWAL entry (source ADMIN, created_by the staff user) with a reason."""
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        balance = self.get_object(request, unquote(object_id))
        if balance is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)

        if request.method == "POST":
            form = BalanceAdjustmentForm(request.POST)
            if form.is_valid():
                book = deposit_create if form.cleaned_data["direction"] == form.DEPOSIT else withdrawal_create
                try:
                    entry = book(
                        wallet_balance_id=balance.pk,
                        amount=form.cleaned_data["amount"],
                        owner=None,
                        created_by=request.user,  # type: ignore[arg-type]
                        source=TransactionSource.ADMIN,
                        description=form.cleaned_data["reason"],
                    )
                except DomainError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    minor_unit = balance.currency.minor_unit
                    summary = (
                        f"{entry.get_type_display()} of {format_amount(entry.amount, minor_unit)} "
                        f"{entry.currency_id} (entry {entry.pk}): {entry.description}"
                    )
                    self.log_change(request, balance, summary)
                    self.message_user(
                        request,
                        f"Booked: {summary}. The balance now holds "
                        f"{format_amount(entry.balance_after, minor_unit)} {entry.currency_id}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(admin_change_url(WalletBalance, balance.pk))
        else:
            form = BalanceAdjustmentForm()

        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust balance {balance}",
            "opts": self.opts,
            "original": balance,
            "form": form,
            "amount_display": format_amount(balance.amount, balance.currency.minor_unit),
        }
        return TemplateResponse(request, "admin/wallets/walletbalance/adjust.html", context)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, balance: WalletBalance) -> str:
        return format_amount(balance.amount, balance.currency.minor_unit)

    @admin.display(description="wallet", ordering="wallet__name")
    def wallet_link(self, balance: WalletBalance) -> str:
        return admin_link(Wallet, balance.wallet_id, balance.wallet.name)

    @admin.display(description="owner", ordering="wallet__owner__email")
    def owner_link(self, balance: WalletBalance) -> str:
        return admin_link(User, balance.wallet.owner_id, balance.wallet.owner.email)

    @admin.display(description="ledger")
    def entries_link(self, balance: WalletBalance) -> str:
        return admin_link_to_entries(wallet_balance=balance.pk)
