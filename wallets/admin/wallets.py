"""Wallets: their balances, and freezing or unfreezing one from its page, with a reason."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from accounts.models import User
from wallet_project.admin_forms import ReasonField, confirm_hidden_fields, confirming, editing
from wallet_project.admin_helpers import (
    ObjectPageAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_link,
    frozen_badge,
    uuid_or_none,
)
from wallet_project.errors import DomainError
from wallet_project.money import format_amount
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallets.admin.common import admin_link_to_entries, owner_label
from wallets.models import StaffAction, Wallet, WalletBalance
from wallets.services import staff_action_record, wallet_set_frozen


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
class WalletAdmin(ReplicaChangelistMixin, ObjectPageAdminMixin, admin.ModelAdmin):
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

    def freeze_view(self, request: HttpRequest, wallet: Wallet) -> HttpResponse:
        """Freeze or unfreeze one wallet, with a reason, after a confirmation page."""
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
