"""Small pieces shared by the admin modules of the apps (the back office and audit console)."""

from __future__ import annotations

import uuid
from uuid import UUID

from django.db.models import Model
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString


def admin_change_url(model: type[Model], pk: object) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])


def admin_changelist_url(model: type[Model], **filters: object) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    if filters:
        url += "?" + urlencode({key: str(value) for key, value in filters.items()})
    return url


def admin_link(model: type[Model], pk: object, text: object) -> SafeString | str:
    """A link to an object's admin page, built from its id alone (no query)."""
    if pk is None:
        return "—"
    return format_html('<a href="{}">{}</a>', admin_change_url(model, pk), text)


def uuid_or_none(term: str) -> UUID | None:
    """The search term as a UUID, so that id searches use the primary key index instead of a text scan."""
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None
