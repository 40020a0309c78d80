"""Currencies and exchange rates: a new rate is set in two steps, old → new, with a reason."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from wallet_project.admin_forms import (
    SEEN,
    ReasonField,
    StaleConfirmation,
    confirm_hidden_fields,
    confirming,
    editing,
    percent_change,
    rate_field,
    rate_warn_percent,
)
from wallet_project.admin_helpers import admin_changelist_url
from wallet_project.errors import DomainError
from wallet_project.money import format_rate
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallets.admin.common import add_domain_error
from wallets.models import Currency, ExchangeRate, StaffAction
from wallets.services import exchange_rate_create, staff_action_record


@admin.register(Currency)
class CurrencyAdmin(ReplicaChangelistMixin, admin.ModelAdmin):
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
class ExchangeRateAdmin(ReplicaChangelistMixin, admin.ModelAdmin):
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
                add_domain_error(form, exc, default_field="rate")
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
