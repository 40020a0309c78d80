"""The back office's lists read from a replica; its object pages, forms and actions read the primary."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse

from wallet_project.replicas.reads import read_from_replica


class ReplicaChangelistMixin:
    """A ModelAdmin whose changelist page (GET) reads from a replica for its staff member.

    Only the page as shown: a POST to the changelist runs an action (a
    change), and goes to the primary like every change form, confirmation
    and object page. The page's rows are read while its template renders, so
    it is rendered here, inside the replica's block; if the replica fails
    under it, it is made again from the primary.
    """

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        show_page = super().changelist_view  # type: ignore[misc]
        if request.method not in ("GET", "HEAD"):
            return show_page(request, extra_context)

        def rendered_page() -> HttpResponse:
            response = show_page(request, extra_context)
            if isinstance(response, SimpleTemplateResponse):
                response.render()
            return response

        return read_from_replica(rendered_page, reader=request.user)
