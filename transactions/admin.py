"""The ledger in the back office: the audit console.

Entries are read-only for everyone, superusers included (the model and a
PostgreSQL trigger refuse changes too). The only writes from here are refunds,
booked by transactions.services.refund_create with source ADMIN and the staff
user as `created_by`. Every page runs a fixed number of queries, whatever the
number of rows, and the CSV export streams: a selection of any size is read
from a server-side cursor in chunks, never held in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.models import User
from transactions.admin_filters import BalanceFilter, CreatedDateRangeFilter, ReferenceFilter, WalletFilter

# The holds' back office lives with the holds (transactions/holds/admin.py); importing it registers it.
from transactions.holds import admin as holds_admin  # noqa: F401
from transactions.models import REFUNDABLE_TYPES, Transaction, TransactionSource, TransactionType
from transactions.selectors import refunded_amount
from transactions.services import refund_create
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
    id_tail,
    uuid_or_none,
)
from wallet_project.errors import DomainError, InvalidInput, RefundExceedsPayment
from wallet_project.money import format_amount, format_rate
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallet_project.replicas.reads import replica_alias
from wallets.models import StaffAction, Wallet, WalletBalance
from wallets.services import staff_action_record

CSV_CHUNK_SIZE = 2000

# (CSV header, values_list path). `currency__minor_unit` is read to format the amounts, not written.
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("created_at", "created_at"),
    ("type", "type"),
    ("amount", "amount"),
    ("currency", "currency_id"),
    ("balance_after", "balance_after"),
    ("sequence", "sequence"),
    ("wallet_balance_id", "wallet_balance_id"),
    ("wallet_id", "wallet_id"),
    ("owner_email", "owner__email"),
    ("related_wallet_balance_id", "related_wallet_balance_id"),
    ("exchange_rate", "exchange_rate"),
    ("reference", "reference"),
    ("source", "source"),
    ("description", "description"),
    ("merchant", "merchant"),
    ("created_by_email", "created_by__email"),
)
_CSV_FIELDS = (*(field for _, field in CSV_COLUMNS), "currency__minor_unit")
_AMOUNT_COLUMNS = frozenset({"amount", "balance_after"})
_TEXT_COLUMNS = frozenset({"owner_email", "description", "merchant", "created_by_email"})
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# How many entries of one reference the change page lists (a payment and its partial refunds).
RELATED_ENTRIES_SHOWN = 50


class _Echo:
    """A file-like object whose write() hands back the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(column: str, value: Any, minor_unit: int) -> str:
    if value is None:
        return ""
    if column in _AMOUNT_COLUMNS:
        return format_amount(value, minor_unit)
    if column == "exchange_rate":
        return format_rate(value)
    if column == "created_at":
        return value.astimezone(UTC).isoformat()
    text = str(value)
    if column in _TEXT_COLUMNS and text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def ledger_csv_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """The CSV lines (header first) of `rows`, read one at a time from values_list(*_CSV_FIELDS)."""
    writer = csv.writer(_Echo())
    yield writer.writerow([header for header, _ in CSV_COLUMNS])
    columns = [header for header, _ in CSV_COLUMNS]
    for row in rows:
        *values, minor_unit = row
        cells = [_csv_cell(column, value, minor_unit) for column, value in zip(columns, values, strict=True)]
        yield writer.writerow(cells)


def owner_label(owner: User) -> str:
    """How the back office names a person: name and email, or the email alone."""
    return f"{owner.name} <{owner.email}>" if owner.name else owner.email


def entry_label(entry: Transaction) -> str:
    """A ledger entry in a heading: its short id, type and amount with the currency's digits."""
    amount = format_amount(entry.amount, entry.currency.minor_unit)
    return f"{id_tail(entry.pk)} ({entry.type} {amount} {entry.currency_id})"


class RefundForm(CurrencyAmountForm):
    """`seen` is what had been refunded of the payment when the confirmation was shown."""

    amount = amount_field(help_text="How much to refund, at most what is left of the payment (filled in).")
    reason = ReasonField(help_text="Required. Kept on the REFUND entry as its description, and in the history.")

    def __init__(self, *args: Any, payment: Transaction, **kwargs: Any) -> None:
        super().__init__(*args, currency=payment.currency, **kwargs)


@admin.register(Transaction)
class TransactionAdmin(ReplicaChangelistMixin, ObjectPageAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    object_page = "refund"  # refund_view, has_refund_permission
    list_display = (
        "short_id",
        "created_at",
        "owner_link",
        "type",
        "amount_display",
        "balance_after_display",
        "reference_link",
        "reason",
    )
    list_display_links = ("short_id",)
    # The link filters first: they show only while applied, and then they are what the page is about.
    list_filter = (
        BalanceFilter,
        WalletFilter,
        ReferenceFilter,
        CreatedDateRangeFilter,
        "type",
        "source",
        "currency",
    )
    list_select_related = ("currency", "owner")
    date_hierarchy = "created_at"
    search_fields = ("owner__email", "owner__name", "merchant", "description")
    search_help_text = (
        "Owner email or name, merchant or reason; or an entry id, reference, balance id or wallet id. "
        "The search runs inside the filters shown on the right."
    )
    # A full count of a ledger of millions of rows on every page view is the one query that does not scale.
    show_full_result_count = False
    list_per_page = 100
    actions = ["export_csv"]
    fields = (
        "id",
        "created_at",
        "type",
        "amount_display",
        "balance_after_display",
        "sequence",
        "balance_link",
        "wallet_link",
        "owner_link",
        "related_balance_link",
        "exchange_rate_display",
        "reference_link",
        "related_entries",
        "source",
        "reason",
        "merchant",
        "created_by",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Transaction]:
        return super().get_queryset(request).select_related("currency", "owner")

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Transaction | None:
        """The entry with everything its page links to, in one query (ModelAdmin.get_object, more joins)."""
        try:
            entry_id = Transaction._meta.pk.to_python(object_id)  # type: ignore[union-attr]
        except ValidationError:
            return None
        return (
            self.get_queryset(request)
            .select_related("wallet", "created_by", "related_wallet_balance__wallet__owner")
            .filter(pk=entry_id)
            .first()
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {"title": "Ledger entries", **(extra_context or {})})

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Transaction | None = None,
    ) -> HttpResponse:
        if obj is not None:
            # One heading that says what the page shows; the default "View transaction" plus a
            # subtitle of raw decimals disagreed with the amounts in the body.
            context["title"] = f"Ledger entry {entry_label(obj)}"
            context["subtitle"] = None
        # The Refund button only where a refund can be booked: a payment with something left to refund.
        if context.get("can_refund") and obj is not None:
            context["can_refund"] = obj.type in REFUNDABLE_TYPES and refunded_amount(payment=obj) < obj.amount
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Transaction], search_term: str
    ) -> tuple[QuerySet[Transaction], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            # Each of these columns has an index; a text search over the UUIDs would scan the ledger.
            return queryset.filter(
                Q(pk=some_id) | Q(reference=some_id) | Q(wallet_balance_id=some_id) | Q(wallet_id=some_id)
            ), False
        return super().get_search_results(request, queryset, search_term)

    # The ledger is append-only, and only the services append.

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("transactions.refund_payment")

    # --- export -------------------------------------------------------------------------

    def has_export_permission(self, request: HttpRequest) -> bool:
        # Owners' emails for the whole ledger in one file: a permission of its own (Finance), not "view".
        return request.user.has_perm("transactions.export_ledger")

    @admin.action(description="Export selected entries as CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Transaction]) -> StreamingHttpResponse:
        # values_list + iterator(): rows come from a server-side cursor, CSV_CHUNK_SIZE at a time,
        # and leave memory as soon as they are written out; no model instances, no per-row queries.
        # The rows are read while the response streams, after this returns: from a replica when one may
        # serve this staff member (an export tolerates a replica's lag), named here since no block is open then.
        rows = (
            queryset.using(replica_alias(reader=request.user))
            .values_list(*_CSV_FIELDS)
            .iterator(chunk_size=CSV_CHUNK_SIZE)
        )
        response = StreamingHttpResponse(ledger_csv_lines(rows), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="ledger-{stamp}.csv"'
        return response

    # --- refund ---------------------------------------------------------------------------

    def refund_view(self, request: HttpRequest, payment: Transaction) -> HttpResponse:
        """Refund a payment, in full or in part, through refund_create (source ADMIN, created_by the staff user),
        after a confirmation page showing the amount and what remains."""
        if payment.type not in REFUNDABLE_TYPES:
            return self._render_refund(request, payment, RefundForm(payment=payment))
        refunded = refunded_amount(payment=payment)

        if request.method != "POST" or editing(request):
            initial = {"amount": format_amount(payment.amount - refunded, payment.currency.minor_unit)}
            initial |= {name: request.POST[name] for name in ("amount", "reason") if request.POST.get(name)}
            return self._render_refund(request, payment, RefundForm(initial=initial, payment=payment))
        form = RefundForm(request.POST, payment=payment)
        if not form.is_valid() or not self._refund_precheck(payment, refunded, form):
            return self._render_refund(request, payment, form)

        notice = ""
        if confirming(request):
            try:
                refund = self._book_refund(request, payment, form)
            except StaleConfirmation:
                notice = "The payment was refunded meanwhile. Nothing was booked: check the new numbers."
                refunded = refunded_amount(payment=payment)
                if not self._refund_precheck(payment, refunded, form):
                    return self._render_refund(request, payment, form)
            except DomainError as exc:
                form.add_error("amount" if isinstance(exc, (RefundExceedsPayment, InvalidInput)) else None, exc.message)
                return self._render_refund(request, payment, form)
            else:
                summary = _refund_summary(refund, payment)
                self.message_user(request, f"{summary} (entry {refund.pk}).", messages.SUCCESS)
                return HttpResponseRedirect(admin_change_url(Transaction, refund.pk))
        return self._render_refund(request, payment, form, refunded=refunded, confirm=True, notice=notice)

    def _refund_precheck(self, payment: Transaction, refunded: Decimal, form: RefundForm) -> bool:
        """Refuse on the form what the service would refuse now (it decides again under the lock)."""
        minor_unit, currency = payment.currency.minor_unit, payment.currency_id
        left = payment.amount - refunded
        if form.cleaned_data["amount"] > left:
            form.add_error(
                "amount",
                f"{format_amount(left, minor_unit)} {currency} is left to refund of this payment; "
                f"{format_amount(form.cleaned_data['amount'], minor_unit)} was asked.",
            )
            return False
        if payment.wallet.is_frozen:
            form.add_error(
                None, f"Wallet {payment.wallet_id} is frozen; no money may move into or out of it. Unfreeze it first."
            )
            return False
        return True

    def _book_refund(self, request: HttpRequest, payment: Transaction, form: RefundForm) -> Transaction:
        """Book the confirmed refund; raises StaleConfirmation (nothing written) if it was refunded since."""
        seen = form.cleaned_data[SEEN]
        reason = form.cleaned_data["reason"]
        minor_unit = payment.currency.minor_unit

        def check_and_record(refund: Transaction) -> None:
            # Under the balance's lock, in the booking's transaction: raising here writes nothing.
            refunded_now = refunded_amount(payment=payment)
            if format_amount(refunded_now - refund.amount, minor_unit) != seen:
                raise StaleConfirmation
            staff_action_record(
                staff=request.user,  # type: ignore[arg-type]
                action=StaffAction.Action.REFUND,
                target=payment,
                reason=reason,
                details={
                    "payment_id": str(payment.pk),
                    "refund_entry_id": str(refund.pk),
                    "amount": format_amount(refund.amount, minor_unit),
                    "currency": refund.currency_id,
                    "left_before": format_amount(payment.amount - refunded_now + refund.amount, minor_unit),
                    "left_after": format_amount(payment.amount - refunded_now, minor_unit),
                },
            )
            self.log_change(request, payment, f"{_refund_summary(refund, payment)}. Reason: {reason}")

        return refund_create(
            payment_id=payment.pk,
            amount=form.cleaned_data["amount"],
            created_by=request.user,  # type: ignore[arg-type]
            source=TransactionSource.ADMIN,
            description=reason,
            on_booked=check_and_record,
        )

    def _render_refund(
        self,
        request: HttpRequest,
        payment: Transaction,
        form: RefundForm,
        *,
        refunded: Decimal | None = None,
        confirm: bool = False,
        notice: str = "",
    ) -> TemplateResponse:
        minor_unit = payment.currency.minor_unit
        refundable = payment.type in REFUNDABLE_TYPES
        if refunded is None:
            refunded = refunded_amount(payment=payment) if refundable else Decimal(0)
        left = max(payment.amount - refunded, Decimal(0))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Refund payment {payment.pk}",
            "opts": self.opts,
            "original": payment,
            "form": form,
            "refundable": refundable,
            "nothing_left": refundable and left <= 0,
            "frozen": payment.wallet.is_frozen,
            "state_badge": frozen_badge(payment.wallet),
            "amount_display": format_amount(payment.amount, minor_unit),
            "refunded_display": format_amount(refunded, minor_unit),
            "left_display": format_amount(left, minor_unit),
            "confirming": confirm,
            "notice": notice,
        }
        if confirm:
            asked = form.cleaned_data["amount"]
            context |= {
                "refund_display": format_amount(asked, minor_unit),
                "remaining_display": format_amount(left - asked, minor_unit),
                "reason": form.cleaned_data["reason"],
                "hidden_fields": confirm_hidden_fields(form, seen=format_amount(refunded, minor_unit)),
            }
        return TemplateResponse(request, "admin/transactions/transaction/refund.html", context)

    # --- columns and fields ------------------------------------------------------------------

    @admin.display(description="entry", ordering="id")
    def short_id(self, entry: Transaction) -> str:
        # Entry ids start with their time (wallet_project/ids.py), so the entries of a day share their first
        # digits: the list shows the random end of each, and its place in its balance's chain; the whole id on
        # hover. Django wraps this in the link to the entry's page.
        return format_html(
            '<span class="entry-id" style="font-family:var(--font-family-monospace)" title="Entry {}, number {} of its'
            ' balance">{}</span> <span class="entry-sequence" style="color:var(--body-quiet-color)">#{}</span>',
            entry.pk,
            entry.sequence,
            id_tail(entry.pk),
            entry.sequence,
        )

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, entry: Transaction) -> str:
        # A no-break space: an amount never wraps away from its currency.
        return f"{format_amount(entry.amount, entry.currency.minor_unit)}\u00a0{entry.currency_id}"

    @admin.display(description="balance after")
    def balance_after_display(self, entry: Transaction) -> str:
        return f"{format_amount(entry.balance_after, entry.currency.minor_unit)}\u00a0{entry.currency_id}"

    @admin.display(description="owner", ordering="owner__email")
    def owner_link(self, entry: Transaction) -> str:
        return admin_link(User, entry.owner_id, owner_label(entry.owner))

    @admin.display(description="reason")
    def reason(self, entry: Transaction) -> str:
        return entry.description or "—"

    @admin.display(description="balance")
    def balance_link(self, entry: Transaction) -> str:
        return admin_link(WalletBalance, entry.wallet_balance_id, f"{entry.wallet.name} · {entry.currency_id}")

    @admin.display(description="wallet")
    def wallet_link(self, entry: Transaction) -> str:
        return admin_link(Wallet, entry.wallet_id, entry.wallet.name)

    @admin.display(description="counterpart balance")
    def related_balance_link(self, entry: Transaction) -> str:
        counterpart = entry.related_wallet_balance
        if counterpart is None:
            return "—"
        text = f"{counterpart.wallet.name} · {counterpart.currency_id} — {owner_label(counterpart.wallet.owner)}"
        return admin_link(WalletBalance, counterpart.pk, text)

    @admin.display(description="exchange rate")
    def exchange_rate_display(self, entry: Transaction) -> str:
        if entry.exchange_rate is None:
            return "—"
        counterpart = entry.related_wallet_balance
        rate = format_rate(entry.exchange_rate)
        if counterpart is None:
            return rate
        # The rate is always source → destination, whichever leg this is.
        base, quote = (
            (entry.currency_id, counterpart.currency_id)
            if entry.type == TransactionType.TRANSFER_OUT
            else (counterpart.currency_id, entry.currency_id)
        )
        return f"1 {base} = {rate} {quote}"

    @admin.display(description="reference")
    def reference_link(self, entry: Transaction) -> str:
        # Every entry of one movement shares the reference: both legs of a transfer, a payment and its refunds.
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            admin_changelist_url(Transaction, reference=entry.reference),
            entry.reference,
            id_tail(entry.reference),
        )

    @admin.display(description="other entries of this movement")
    def related_entries(self, entry: Transaction) -> str:
        others = list(
            Transaction.objects.filter(reference=entry.reference)
            .exclude(pk=entry.pk)
            .select_related("currency")
            .order_by("created_at", "id")[:RELATED_ENTRIES_SHOWN]
        )
        if not others:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{} {} {}</a> on balance {}',
            (
                (
                    admin_change_url(Transaction, other.pk),
                    other.get_type_display(),
                    format_amount(other.amount, other.currency.minor_unit),
                    other.currency_id,
                    other.wallet_balance_id,
                )
                for other in others
            ),
        )


def _refund_summary(refund: Transaction, payment: Transaction) -> str:
    return (
        f"Refunded {format_amount(refund.amount, payment.currency.minor_unit)} {refund.currency_id} "
        f"of payment {payment.pk}"
    )
