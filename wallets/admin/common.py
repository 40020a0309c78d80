"""Pieces the wallets app's admin pages share: links, labels, and a service's refusal shown on a form."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html

from accounts.models import User
from transactions.models import Transaction
from wallet_project.admin_helpers import admin_changelist_url
from wallet_project.errors import DomainError, InsufficientFunds, InvalidInput


def admin_link_to_entries(**filters: object) -> str:
    """A link to the ledger changelist filtered on `filters` (e.g. one balance's entries)."""
    return format_html('<a href="{}">Ledger entries</a>', admin_changelist_url(Transaction, **filters))


def owner_label(owner: User) -> str:
    """`Jane Doe <jane@example.com>`, or the email alone when the owner has no name."""
    return f"{owner.name} <{owner.email}>" if owner.name else owner.email


def add_domain_error(form: forms.Form, exc: DomainError, *, default_field: str | None) -> None:
    """Show a service's refusal next to the field it is about (its details name it), else above the form."""
    details = exc.details if isinstance(getattr(exc, "details", None), dict) else {}
    field = next((name for name in details if name in form.fields), None)
    if field is None and isinstance(exc, (InvalidInput, InsufficientFunds)):
        field = default_field
    form.add_error(field, exc.message)
