"""Small pieces shared by the admin modules of the apps (the back office and audit console)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
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


FROZEN_BADGE_STYLE = (
    "background:#ba2121;color:#fff;font-weight:bold;padding:1px 6px;border-radius:3px;white-space:nowrap"
)


def frozen_badge(wallet: Any) -> SafeString:
    """A red "Frozen" badge for a frozen wallet, a plain "Active" otherwise.

    `wallet` is a Wallet or its `is_frozen`; use it wherever a wallet, balance
    or entry is shown, so that frozen looks the same on every page.
    """
    is_frozen = wallet if isinstance(wallet, bool) else wallet.is_frozen
    if is_frozen:
        return format_html(
            '<span class="wallet-frozen" style="{}" title="{}">Frozen</span>',
            FROZEN_BADGE_STYLE,
            "No money may move into or out of this wallet.",
        )
    return format_html('<span class="wallet-active">{}</span>', "Active")


def id_tail(some_id: object) -> str:
    """The end of an id: entry, hold ids and references are time-ordered, so their first digits repeat for a while."""
    return "…" + str(some_id)[-8:]


def uuid_or_none(term: str) -> UUID | None:
    """The search term as a UUID, so that id searches use the primary key index instead of a text scan."""
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


class ObjectPageAdminMixin:
    """A ModelAdmin with one page of its own per object, at `<object_id>/<object_page>/`.

    The subclass names the page (`object_page = "refund"`) and defines
    `<object_page>_view(request, obj)` and `has_<object_page>_permission(request)`;
    the page answers 403 without the permission and sends an unknown id back
    to the list, as the change page does, before the view sees the object.
    The change form gets `can_<object_page>` to show or hide its button.
    """

    object_page: str

    def _page_permission(self, request: HttpRequest) -> bool:
        return getattr(self, f"has_{self.object_page}_permission")(request)

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta  # type: ignore[attr-defined]
        page = path(
            f"<path:object_id>/{self.object_page}/",
            self.admin_site.admin_view(self._object_page_view),  # type: ignore[attr-defined]
            name=f"{opts.app_label}_{opts.model_name}_{self.object_page}",
        )
        # Before the default patterns, whose "<path:object_id>/" would swallow ".../<page>/".
        return [page, *super().get_urls()]  # type: ignore[misc]

    def _object_page_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self._page_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)  # type: ignore[attr-defined]
        return getattr(self, f"{self.object_page}_view")(request, obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), f"can_{self.object_page}": self._page_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]


class ReadOnlyAdminMixin:
    """No add, change or delete through the admin: these rows change only through the services."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
