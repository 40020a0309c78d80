"""Holds in the back office: read-only lists and pages, and voiding one from its page.

Nobody adds, edits or deletes a hold here (the services write them, and the
database refuses any change to a resolved one). Every status shown or
filtered on is the status as of now: an active hold past its expiry is
`expired` and reserves nothing, whether or not a movement or the sweeper has
marked it yet. The one write is a void, for holders of `transactions.void_hold`
(Support, Finance): it goes through `hold_void` with source ADMIN and the
staff member as `created_by`, after a confirmation page, and its reason goes
to the staff-action history in the same database transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from transactions.admin_filters import BalanceFilter
from transactions.holds.selectors import holds_with_status_now
from transactions.holds.services import hold_void
from transactions.models import Hold, HoldStatus, Transaction, TransactionSource, TransactionType
from wallet_project.admin_forms import SEEN, ReasonField, StaleConfirmation, confirm_hidden_fields, confirming, editing
from wallet_project.admin_helpers import (
    ObjectPageAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    admin_link,
    frozen_badge,
    id_tail,
    uuid_or_none,
)
from wallet_project.errors import DomainError
from wallet_project.money import format_amount
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallets.admin.common import owner_label
from wallets.models import StaffAction, Wallet, WalletBalance
from wallets.services import staff_action_record

# How each status as of now looks, on every page that shows a hold.
_STATUS_STYLE = {
    HoldStatus.ACTIVE: ("#417690", "Reserves what remains of it until captured, voided or expired."),
    HoldStatus.CAPTURED: ("#2e7d32", "Captured: its CAPTURE entries moved the money; nothing is reserved."),
    HoldStatus.VOIDED: ("#666666", "Voided: what remained was released; nothing is reserved."),
    HoldStatus.EXPIRED: ("#a35a00", "Expired: past its expiry it reserves nothing, swept or not."),
}
_BADGE = "background:{};color:#fff;font-weight:bold;padding:1px 6px;border-radius:3px;white-space:nowrap"


def hold_status_badge(hold: Hold) -> SafeString:
    """The hold's status as of now, as a coloured badge whose tooltip says what it means for the money."""
    status = HoldStatus(hold.status_now)
    colour, meaning = _STATUS_STYLE[status]
    return format_html(
        '<span class="hold-status hold-{}" style="{}" title="{}">{}</span>',
        status.value,
        _BADGE.format(colour),
        meaning,
        status.label,
    )


def money(amount: Decimal, hold: Hold) -> str:
    """An amount in the hold's currency with its digits; a no-break space keeps it with its currency."""
    return f"{format_amount(amount, hold.currency.minor_unit)}\u00a0{hold.currency_id}"


def balance_label(balance: WalletBalance) -> str:
    return f"{balance.wallet.name} · {balance.currency_id}"


def frozen_only(wallet: Wallet) -> SafeString | str:
    """The red Frozen badge when the wallet is frozen; nothing otherwise, where an "Active" beside the hold's own
    status would read as the hold's."""
    return frozen_badge(wallet) if wallet.is_frozen else ""


def when(moment: datetime) -> str:
    """A time as every admin page shows one (the back office's DATETIME_FORMAT: seconds and the zone)."""
    return formats.localize(timezone.template_localtime(moment))


# --- filters --------------------------------------------------------------------------------


class StatusNowFilter(admin.SimpleListFilter):
    """The status as of now, as the API's `?status=` reads it: `expired` includes active holds past expiry."""

    title = "status (as of now)"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(status.value, status.label) for status in HoldStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Hold]) -> QuerySet[Hold]:
        value = self.value()
        if value not in HoldStatus.values:
            return queryset
        return holds_with_status_now(queryset, value)


class ExpiringSoonFilter(admin.SimpleListFilter):
    """Active holds whose expiry falls within the next hour, day or week (none already past it)."""

    title = "expiring soon"
    parameter_name = "expiring_within"
    WINDOWS = {
        "1h": ("Within 1 hour", timedelta(hours=1)),
        "24h": ("Within 24 hours", timedelta(hours=24)),
        "7d": ("Within 7 days", timedelta(days=7)),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Hold]) -> QuerySet[Hold]:
        window = self.WINDOWS.get(self.value() or "")
        if window is None:
            return queryset
        now = timezone.now()
        return queryset.filter(status=HoldStatus.ACTIVE, expires_at__gt=now, expires_at__lte=now + window[1])


# --- the void form ------------------------------------------------------------------------------


class VoidHoldForm(forms.Form):
    """`seen` is what the hold had left to release when the confirmation was shown: a capture since changes it."""

    reason = ReasonField()
    seen = forms.CharField(required=False, widget=forms.HiddenInput)


@admin.register(Hold)
class HoldAdmin(ReplicaChangelistMixin, ObjectPageAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Holds are placed, captured and voided through the services; here they are read, and voided with a reason."""

    object_page = "void"  # void_view, has_void_permission

    list_display = (
        "short_id",
        "owner_email",
        "balance_link",
        "currency",
        "amount_display",
        "captured_display",
        "remaining_display",
        "status_badge",
        "merchant",
        "expires_at",
        "created_at",
    )
    list_display_links = ("short_id",)
    # The balance filter first: it shows only while applied (the link from a balance's page).
    list_filter = (BalanceFilter, StatusNowFilter, ExpiringSoonFilter, "currency")
    list_select_related = ("owner", "currency", "wallet_balance__wallet")
    search_fields = ("owner__email", "merchant")
    search_help_text = "Owner email or merchant; or a hold id, its reference or a balance id."
    # Holds are many and only grow: no full count of the table on every page view.
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "id",
        "status_badge",
        "owner_link",
        "balance_link",
        "wallet_link",
        "amount_display",
        "captured_display",
        "remaining_display",
        "description",
        "merchant",
        "created_at",
        "expires_at",
        "resolved_at_display",
        "created_by",
        "reference_link",
        "capture_entries",
        "staff_actions",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Hold]:
        return super().get_queryset(request).select_related("owner", "currency", "wallet_balance__wallet")

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Hold | None:
        """The hold with everything its page names, in one query; None for an id that is not a hold's."""
        hold_id = uuid_or_none(object_id)
        if hold_id is None:
            return None
        return self.get_queryset(request).select_related("created_by").filter(pk=hold_id).first()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Hold], search_term: str
    ) -> tuple[QuerySet[Hold], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            # Each of these columns has an index; a text search over the UUIDs would scan the table.
            return queryset.filter(Q(pk=some_id) | Q(reference=some_id) | Q(wallet_balance_id=some_id)), False
        return super().get_search_results(request, queryset, search_term)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {"title": "Holds", **(extra_context or {})})

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Hold | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["title"] = f"Hold {obj.pk} ({money(obj.amount, obj)}, {HoldStatus(obj.status_now).label.lower()})"
            context["subtitle"] = None
            # The Void button only where there is something to void.
            context["can_void"] = context.get("can_void", False) and obj.status_now == HoldStatus.ACTIVE
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- void -------------------------------------------------------------------------------------

    def has_void_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("transactions.void_hold")

    def void_view(self, request: HttpRequest, hold: Hold) -> HttpResponse:
        """Void an active hold through hold_void (source ADMIN, created_by the staff user) after a confirmation,
        releasing what remains of it; the reason goes to the staff-action history in the same transaction."""
        if hold.status_now != HoldStatus.ACTIVE:
            return self._render_void(request, hold, VoidHoldForm())
        if request.method != "POST" or editing(request):
            reason = request.POST.get("reason", "")
            return self._render_void(request, hold, VoidHoldForm(initial={"reason": reason} if reason else None))
        form = VoidHoldForm(request.POST)
        if not form.is_valid():
            return self._render_void(request, hold, form)

        notice = ""
        if confirming(request):
            try:
                voided = self._void(request, hold, form)
            except StaleConfirmation:
                notice = "The hold was captured in part meanwhile. Nothing was voided: check the new numbers."
                hold = self._fresh(request, hold)
                if hold.status_now != HoldStatus.ACTIVE:
                    return self._render_void(request, hold, form)
            except DomainError as exc:
                # Resolved meanwhile (HoldNotActive), the balance busy (LockTimeout), Redis down...: said, not a 500.
                form.add_error(None, exc.message)
                return self._render_void(request, self._fresh(request, hold), form)
            else:
                self.message_user(request, f"{_void_summary(voided, hold)}.", messages.SUCCESS)
                return HttpResponseRedirect(admin_change_url(Hold, hold.pk))
        return self._render_void(request, hold, form, confirm=True, notice=notice)

    def _void(self, request: HttpRequest, hold: Hold, form: VoidHoldForm) -> Hold:
        """Void the confirmed hold; raises StaleConfirmation (nothing written) if what it releases changed since."""
        seen = form.cleaned_data[SEEN]
        reason = form.cleaned_data["reason"]
        minor_unit = hold.currency.minor_unit

        def check_and_record(voided: Hold) -> None:
            # Under the balance's locks, in the void's transaction: raising here writes nothing.
            released = voided.amount - voided.captured_amount
            if format_amount(released, minor_unit) != seen:
                raise StaleConfirmation
            staff_action_record(
                staff=request.user,  # type: ignore[arg-type]
                action=StaffAction.Action.HOLD_VOIDED,
                target=voided,
                reason=reason,
                details={
                    "hold_id": str(voided.pk),
                    "wallet_balance_id": str(voided.wallet_balance_id),
                    "amount": format_amount(voided.amount, minor_unit),
                    "captured_amount": format_amount(voided.captured_amount, minor_unit),
                    "released": format_amount(released, minor_unit),
                    "currency": voided.currency_id,
                },
            )
            self.log_change(request, voided, f"{_void_summary(voided, hold)}. Reason: {reason}")

        return hold_void(
            hold_id=hold.pk,
            owner=None,
            created_by=request.user,  # type: ignore[arg-type]
            source=TransactionSource.ADMIN,
            on_voided=check_and_record,
        )

    def _fresh(self, request: HttpRequest, hold: Hold) -> Hold:
        """The hold as it is now (holds are never deleted)."""
        fresh = self.get_object(request, str(hold.pk))
        assert fresh is not None
        return fresh

    def _render_void(
        self, request: HttpRequest, hold: Hold, form: VoidHoldForm, *, confirm: bool = False, notice: str = ""
    ) -> TemplateResponse:
        wallet = hold.wallet_balance.wallet
        remaining = hold.remaining
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Void hold {hold.pk}",
            "opts": self.opts,
            "original": hold,
            "form": form,
            "active": hold.status_now == HoldStatus.ACTIVE,
            "status_label": HoldStatus(hold.status_now).label.lower(),
            "status_badge": hold_status_badge(hold),
            "owner_label": owner_label(hold.owner),
            "balance_label": balance_label(hold.wallet_balance),
            "state_badge": frozen_only(wallet),
            "amount_display": money(hold.amount, hold),
            "captured_display": money(hold.captured_amount, hold),
            "remaining_display": money(remaining, hold),
            "confirming": confirm,
            "notice": notice,
        }
        if confirm:
            context |= {
                "reason": form.cleaned_data["reason"],
                "hidden_fields": confirm_hidden_fields(form, seen=format_amount(remaining, hold.currency.minor_unit)),
            }
        return TemplateResponse(request, "admin/transactions/hold/void.html", context)

    # --- columns and fields -------------------------------------------------------------------------

    @admin.display(description="hold", ordering="id")
    def short_id(self, hold: Hold) -> str:
        return id_tail(hold.pk)

    @admin.display(description="owner", ordering="owner__email")
    def owner_email(self, hold: Hold) -> str:
        return hold.owner.email

    @admin.display(description="owner")
    def owner_link(self, hold: Hold) -> str:
        return admin_link(User, hold.owner_id, owner_label(hold.owner))

    @admin.display(description="balance")
    def balance_link(self, hold: Hold) -> str:
        return admin_link(WalletBalance, hold.wallet_balance_id, balance_label(hold.wallet_balance))

    @admin.display(description="wallet")
    def wallet_link(self, hold: Hold) -> str:
        wallet = hold.wallet_balance.wallet
        return format_html("{} {}", admin_link(Wallet, wallet.pk, wallet.name), frozen_only(wallet))

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, hold: Hold) -> str:
        return money(hold.amount, hold)

    @admin.display(description="captured", ordering="captured_amount")
    def captured_display(self, hold: Hold) -> str:
        return money(hold.captured_amount, hold)

    @admin.display(description="remaining (now)")
    def remaining_display(self, hold: Hold) -> str:
        return money(hold.remaining, hold)

    @admin.display(description="status (now)")
    def status_badge(self, hold: Hold) -> str:
        return hold_status_badge(hold)

    @admin.display(description="resolved at")
    def resolved_at_display(self, hold: Hold) -> str:
        resolved_at = hold.resolved_at_now
        if resolved_at is None:
            return "—"
        if hold.is_past_expiry:
            return f"{when(resolved_at)} (its expiry; not yet marked by a movement or the sweeper)"
        return when(resolved_at)

    @admin.display(description="reference")
    def reference_link(self, hold: Hold) -> str:
        # The CAPTURE entries carry the hold's reference, and so do their refunds.
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            admin_changelist_url(Transaction, reference=hold.reference),
            "Every ledger entry of this hold: its captures and their refunds.",
            hold.reference,
        )

    @admin.display(description="capture entries")
    def capture_entries(self, hold: Hold) -> str:
        entries = list(
            Transaction.objects.filter(reference=hold.reference, type=TransactionType.CAPTURE).order_by("sequence")
        )
        if not entries:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{} {}</a> at {}',
            (
                (
                    admin_change_url(Transaction, entry.pk),
                    entry.get_type_display(),
                    money(entry.amount, hold),
                    when(entry.created_at),
                )
                for entry in entries
            ),
        )

    @admin.display(description="staff actions")
    def staff_actions(self, hold: Hold) -> str:
        history = list(
            StaffAction.objects.filter(target_type=ContentType.objects.get_for_model(Hold), target_id=str(hold.pk))
            .select_related("staff")
            .order_by("created_at")
        )
        if not history:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> by {} at {}: {}',
            (
                (
                    admin_change_url(StaffAction, staff_action.pk),
                    staff_action.get_action_display(),
                    staff_action.staff.email,
                    when(staff_action.created_at),
                    staff_action.reason,
                )
                for staff_action in history
            ),
        )


def _void_summary(voided: Hold, hold: Hold) -> str:
    released = voided.amount - voided.captured_amount
    return f"Voided hold {voided.pk}: released {money(released, hold)} on balance {balance_label(hold.wallet_balance)}"
