"""Wallets, balances, currencies and exchange rates in the back office.

Nothing here writes an amount: a balance is adjusted by booking a DEPOSIT or
WITHDRAWAL entry through transactions.services, a wallet is frozen through
wallets.services.wallet_set_frozen, and a new exchange rate goes through
wallets.services.exchange_rate_create, which closes the current one. Old rates
and ledger-backed amounts are read-only for everyone, superusers included.

Each of those three actions is a two-step form (wallet_project.admin_forms):
strict number input, a confirmation page showing old → new, and a required
reason, recorded with the action in the staff-action history (StaffAction) in
the same database transaction.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from accounts.models import User
from transactions.models import Transaction, TransactionSource
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
    percent_change,
    rate_field,
    rate_warn_percent,
)
from wallet_project.admin_helpers import (
    ObjectPageAdminMixin,
    admin_change_url,
    admin_changelist_url,
    admin_link,
    frozen_badge,
    uuid_or_none,
)
from wallet_project.errors import DomainError, InsufficientFunds, InvalidInput
from wallet_project.money import format_amount, format_rate
from wallets.models import Currency, ExchangeRate, StaffAction, Wallet, WalletBalance
from wallets.services import exchange_rate_create, staff_action_record, wallet_set_frozen


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


def owner_label(owner: User) -> str:
    """`Jane Doe <jane@example.com>`, or the email alone when the owner has no name."""
    return f"{owner.name} <{owner.email}>" if owner.name else owner.email


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


class NewRateForm(forms.Form):
    base = forms.ModelChoiceField(queryset=Currency.objects.all(), to_field_name="code", empty_label=None)
    quote = forms.ModelChoiceField(queryset=Currency.objects.all(), to_field_name="code", empty_label=None)
    rate = rate_field(help_text="How many units of the quote currency one unit of the base currency buys, e.g. 0.92.")
    reason = ReasonField()
    # The id of the pair's current rate when the confirmation was shown ("none": the pair had none).
    seen = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        base, quote = cleaned.get("base"), cleaned.get("quote")
        if base is not None and base == quote:
            self.add_error("quote", "Must differ from the base currency.")
        return cleaned


def current_rate(base: str, quote: str) -> ExchangeRate | None:
    return ExchangeRate.objects.filter(base_id=base, quote_id=quote, valid_to__isnull=True).first()


def rate_version(rate: ExchangeRate | None) -> str:
    return str(rate.pk) if rate is not None else "none"


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

    list_display = ("pair", "rate_display", "valid_from", "valid_to", "is_current", "created_by")
    list_filter = (CurrentRateFilter, "base", "quote")
    list_select_related = ("created_by",)
    search_fields = ("=base__code", "=quote__code")
    date_hierarchy = "valid_from"
    fields = ("id", "base", "quote", "rate", "valid_from", "valid_to", "created_by")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExchangeRate]:
        return super().get_queryset(request).select_related("base", "quote", "created_by")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Set a pair's rate in two steps: the form (with the current rates), then old → new to confirm."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST" or editing(request):
            source = request.POST if editing(request) else request.GET
            initial = {name: source.get(name, "") for name in ("base", "quote", "rate", "reason")}
            return self._render_rate_form(request, NewRateForm(initial={k: v for k, v in initial.items() if v}))

        form = NewRateForm(request.POST)
        if not form.is_valid():
            return self._render_rate_form(request, form)
        base, quote = form.cleaned_data["base"].code, form.cleaned_data["quote"].code
        notice = ""
        if confirming(request):
            try:
                created, old = self._set_rate(request, form)
            except StaleConfirmation:
                notice = (
                    f"The current {base} → {quote} rate changed while you were confirming. "
                    "Nothing was saved: check the new numbers and confirm again."
                )
            except DomainError as exc:
                _add_domain_error(form, exc, default_field="rate")
                return self._render_rate_form(request, form)
            else:
                self.message_user(request, f"{_rate_summary(created, old)}.", messages.SUCCESS)
                return HttpResponseRedirect(admin_changelist_url(ExchangeRate))
        return self._render_rate_confirmation(request, form, current_rate(base, quote), notice)

    def _set_rate(self, request: HttpRequest, form: NewRateForm) -> tuple[ExchangeRate, ExchangeRate | None]:
        """Replace the pair's current rate if it is still the one confirmed; raises StaleConfirmation if not."""
        reason = form.cleaned_data["reason"]
        replaced: list[ExchangeRate | None] = []

        def check_and_record(created: ExchangeRate, old: ExchangeRate | None) -> None:
            # Under the pair's lock, in the new rate's transaction: a stale confirmation undoes it.
            if rate_version(old) != form.cleaned_data[SEEN]:
                raise StaleConfirmation
            staff_action_record(
                staff=request.user,  # type: ignore[arg-type]
                action=StaffAction.Action.RATE_SET,
                target=created,
                reason=reason,
                details=_rate_details(created, old),
            )
            self.log_addition(request, created, f"{_rate_summary(created, old)}. Reason: {reason}")
            replaced.append(old)

        try:
            created = exchange_rate_create(
                base=form.cleaned_data["base"].code,
                quote=form.cleaned_data["quote"].code,
                rate=form.cleaned_data["rate"],
                created_by=request.user,  # type: ignore[arg-type]
                on_created=check_and_record,
            )
        except IntegrityError as exc:
            # A first rate of the pair set by someone else at the same moment (one current rate per pair).
            raise StaleConfirmation from exc
        return created, replaced[0]

    def _render_rate_form(self, request: HttpRequest, form: NewRateForm) -> TemplateResponse:
        current_rates = list(
            ExchangeRate.objects.filter(valid_to__isnull=True)
            .order_by("base_id", "quote_id")
            .values_list("base_id", "quote_id", "rate")
        )
        chosen = form.data if form.is_bound else form.initial
        rates_by_pair = {f"{base}:{quote}": format_rate(rate) for base, quote, rate in current_rates}
        context = {
            **self.admin_site.each_context(request),
            "title": "Set an exchange rate",
            "opts": self.opts,
            "form": form,
            "current_rates": [(base, quote, format_rate(rate)) for base, quote, rate in current_rates],
            "current_rates_json": rates_by_pair,
            "chosen_current_rate": rates_by_pair.get(f"{chosen.get('base', '')}:{chosen.get('quote', '')}"),
            "warn_percent": rate_warn_percent(),
        }
        return TemplateResponse(request, "admin/wallets/exchangerate/set_rate.html", context)

    def _render_rate_confirmation(
        self, request: HttpRequest, form: NewRateForm, old: ExchangeRate | None, notice: str
    ) -> TemplateResponse:
        new_rate = form.cleaned_data["rate"]
        change = percent_change(old.rate, new_rate) if old is not None else None
        context = {
            **self.admin_site.each_context(request),
            "title": "Confirm the new exchange rate",
            "opts": self.opts,
            "confirming": True,
            "base": form.cleaned_data["base"].code,
            "quote": form.cleaned_data["quote"].code,
            "old_rate": format_rate(old.rate) if old is not None else None,
            "new_rate": format_rate(new_rate),
            "change_percent": f"{change:+f}" if change is not None else None,
            "warn": change is not None and abs(change) > rate_warn_percent(),
            "warn_percent": rate_warn_percent(),
            "reason": form.cleaned_data["reason"],
            "notice": notice,
            "hidden_fields": confirm_hidden_fields(form, seen=rate_version(old)),
        }
        return TemplateResponse(request, "admin/wallets/exchangerate/set_rate.html", context)

    @admin.display(description="pair", ordering="base")
    def pair(self, rate: ExchangeRate) -> str:
        return f"{rate.base_id} → {rate.quote_id}"

    @admin.display(description="rate", ordering="rate")
    def rate_display(self, rate: ExchangeRate) -> str:
        return format_rate(rate.rate)

    @admin.display(description="current", boolean=True)
    def is_current(self, rate: ExchangeRate) -> bool:
        return rate.valid_to is None


def _rate_summary(created: ExchangeRate, old: ExchangeRate | None) -> str:
    pair = f"{created.base_id} → {created.quote_id}"
    if old is None:
        return f"Set the first {pair} rate: {format_rate(created.rate)}"
    change = percent_change(old.rate, created.rate)
    return f"Set the {pair} rate from {format_rate(old.rate)} to {format_rate(created.rate)} ({change:+f} %)"


def _rate_details(created: ExchangeRate, old: ExchangeRate | None) -> dict[str, Any]:
    return {
        "base": created.base_id,
        "quote": created.quote_id,
        "old_rate": format_rate(old.rate) if old is not None else None,
        "old_rate_id": str(old.pk) if old is not None else None,
        "new_rate": format_rate(created.rate),
        "change_percent": f"{percent_change(old.rate, created.rate):+f}" if old is not None else None,
    }


def _add_domain_error(form: forms.Form, exc: DomainError, *, default_field: str | None) -> None:
    """Show a service's refusal next to the field it is about (its details name it), else above the form."""
    details = exc.details if isinstance(getattr(exc, "details", None), dict) else {}
    field = next((name for name in details if name in form.fields), None)
    if field is None and isinstance(exc, (InvalidInput, InsufficientFunds)):
        field = default_field
    form.add_error(field, exc.message)


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


class FreezeForm(forms.Form):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"

    # What the page offered (the wallet's state may change before the confirmation arrives).
    target = forms.ChoiceField(choices=[(FREEZE, "Freeze"), (UNFREEZE, "Unfreeze")], widget=forms.HiddenInput)
    reason = ReasonField()
    seen = forms.CharField(required=False, widget=forms.HiddenInput)


@admin.register(Wallet)
class WalletAdmin(ObjectPageAdminMixin, admin.ModelAdmin):
    """Wallets are opened by their owners through the API; the back office reads them and freezes them."""

    object_page = "freeze"  # freeze_view, has_freeze_permission

    list_display = ("name", "owner_link", "state", "created_at")
    list_filter = ("is_frozen",)
    list_select_related = ("owner",)
    search_fields = ("owner__email", "name")
    search_help_text = "Owner email, wallet name, or a wallet id."
    date_hierarchy = "created_at"
    fields = ("id", "owner", "name", "state", "created_at", "entries_link")
    readonly_fields = fields
    inlines = [BalanceInline]

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
        # Name and owner are the owner's business; freezing has its own permission and page.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_freeze_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.freeze_wallet")

    def freeze_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Freeze or unfreeze one wallet, with a reason, after a confirmation page."""
        if not self.has_freeze_permission(request):
            raise PermissionDenied
        wallet = self.get_object(request, unquote(object_id))
        if wallet is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        offered = FreezeForm.UNFREEZE if wallet.is_frozen else FreezeForm.FREEZE

        if request.method != "POST" or editing(request):
            initial = {"target": offered, "reason": request.POST.get("reason", "")}
            return self._render_freeze(request, wallet, FreezeForm(initial=initial), confirm=False)
        form = FreezeForm(request.POST)
        if not form.is_valid():
            return self._render_freeze(request, wallet, form, confirm=False)
        if form.cleaned_data["target"] != offered:
            state = "frozen" if wallet.is_frozen else "not frozen"
            self.message_user(request, f"Nothing done: the wallet is already {state}.", messages.WARNING)
            return HttpResponseRedirect(admin_change_url(Wallet, wallet.pk))
        if not confirming(request):
            return self._render_freeze(request, wallet, form, confirm=True)

        frozen = offered == FreezeForm.FREEZE
        reason = form.cleaned_data["reason"]
        verb = "Froze" if frozen else "Unfroze"
        summary = f"{verb} wallet {wallet.name!r} of {wallet.owner.email}"

        def record(changed: Wallet) -> None:
            staff_action_record(
                staff=request.user,  # type: ignore[arg-type]
                action=StaffAction.Action.WALLET_FROZEN if frozen else StaffAction.Action.WALLET_UNFROZEN,
                target=changed,
                reason=reason,
                details={"wallet_id": str(changed.pk), "owner_email": wallet.owner.email, "frozen": frozen},
            )
            self.log_change(request, changed, f"{summary}. Reason: {reason}")

        try:
            wallet_set_frozen(wallet_id=wallet.pk, frozen=frozen, on_changed=record)
        except DomainError as exc:
            form.add_error(None, exc.message)
            return self._render_freeze(request, wallet, form, confirm=False)
        self.message_user(request, f"{summary}.", messages.SUCCESS)
        return HttpResponseRedirect(admin_change_url(Wallet, wallet.pk))

    def _render_freeze(self, request: HttpRequest, wallet: Wallet, form: FreezeForm, *, confirm: bool) -> HttpResponse:
        freezing = not wallet.is_frozen
        balances = [
            (balance.currency_id, format_amount(balance.amount, balance.currency.minor_unit))
            for balance in wallet.balances.select_related("currency").order_by("currency_id")
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"{'Freeze' if freezing else 'Unfreeze'} wallet {wallet.name}",
            "opts": self.opts,
            "original": wallet,
            "owner_label": owner_label(wallet.owner),
            "freezing": freezing,
            "balances": balances,
            "form": form,
            "confirming": confirm,
            "reason": form.cleaned_data.get("reason", "") if confirm else "",
            "hidden_fields": confirm_hidden_fields(form, seen="") if confirm else [],
            "state_badge": frozen_badge(wallet),
        }
        return TemplateResponse(request, "admin/wallets/wallet/freeze.html", context)

    @admin.display(description="state", ordering="is_frozen")
    def state(self, wallet: Wallet) -> str:
        return frozen_badge(wallet)

    @admin.display(description="owner", ordering="owner__email")
    def owner_link(self, wallet: Wallet) -> str:
        return admin_link(User, wallet.owner_id, wallet.owner.email)

    @admin.display(description="ledger")
    def entries_link(self, wallet: Wallet) -> str:
        return admin_link_to_entries(wallet=wallet.pk)


# --- balances ----------------------------------------------------------------------------


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
class WalletBalanceAdmin(ObjectPageAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Balances are read-only; an adjustment is a DEPOSIT or WITHDRAWAL entry booked by the services."""

    object_page = "adjust"  # adjust_view, has_adjust_permission

    list_display = (
        "__str__",
        "owner_link",
        "wallet_link",
        "wallet_state",
        "currency",
        "amount_display",
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
        """Book a DEPOSIT or WITHDRAWAL entry (source ADMIN, created_by the staff user) after a confirmation."""
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        balance = self.get_object(request, unquote(object_id))
        if balance is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)

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
                balance = self.get_object(request, unquote(object_id))
                if not self._precheck(balance, form):
                    return self._render_adjust(request, balance, form)
            except DomainError as exc:
                _add_domain_error(form, exc, default_field="amount")
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
        if form.cleaned_data["direction"] == form.WITHDRAWAL and amount > balance.amount:
            minor_unit, currency = balance.currency.minor_unit, balance.currency_id
            form.add_error(
                "amount",
                f"Balance {balance.pk} holds {format_amount(balance.amount, minor_unit)} {currency}; "
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


# --- staff-action history ---------------------------------------------------------------------


@admin.register(StaffAction)
class StaffActionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who did what to which wallet, balance, rate or payment, and why; written only with the action itself."""

    list_display = ("created_at", "staff", "action", "target_link", "reason")
    list_filter = ("action", ("staff", admin.RelatedOnlyFieldListFilter), "created_at")
    list_select_related = ("staff", "target_type")
    search_fields = ("reason", "target_id", "target_repr", "staff__email")
    search_help_text = "Reason, target id or name, or staff email."
    date_hierarchy = "created_at"
    fields = ("id", "created_at", "staff", "action", "target_link", "reason", "details")
    readonly_fields = fields
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaffAction]:
        return super().get_queryset(request).select_related("staff", "target_type")

    @admin.display(description="target")
    def target_link(self, staff_action: StaffAction) -> str:
        model = staff_action.target_type.model_class()
        if model is None:
            return staff_action.target_repr
        return admin_link(model, staff_action.target_id, staff_action.target_repr)
