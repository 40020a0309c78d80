"""The ReDoc page, held to this server.

ReDoc's bundle draws the Redocly logo from cdn.redoc.ly in its sidebar; nothing
in its settings turns that off. The page's Content-Security-Policy lets it load
only from this server (the bundle, the schema, its own inline styles and the
search worker), so the browser never asks another host: offline, nothing waits
on a request that cannot finish, and the logo's image is simply left out.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework.request import Request
from rest_framework.response import Response

REDOC_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        # The page's inline Redoc.init call; ReDoc's search runs in a worker built from a blob.
        "script-src 'self' 'unsafe-inline' blob:",
        "worker-src 'self' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
    ]
)


class RedocView(SpectacularRedocView):
    """drf-spectacular's ReDoc view, with a policy that keeps the page on this server."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = REDOC_CONTENT_SECURITY_POLICY
        return response
