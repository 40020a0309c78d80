"""The ReDoc page, held to this server.

ReDoc's bundle draws the Redocly logo from cdn.redoc.ly in its sidebar, and
nothing in its settings turns that off. The page is served with the sidecar's
bundle in which that one address is replaced by an empty inline image, and
with a Content-Security-Policy that lets it load only from this server (the
bundle, the schema, its inline styles and the search worker): offline, nothing
waits on a request that cannot finish.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework.request import Request
from rest_framework.response import Response

SIDECAR_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"

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


@lru_cache(maxsize=1)
def redoc_bundle() -> bytes:
    """The sidecar's ReDoc bundle, without the one image it fetches from another host."""
    path = finders.find(SIDECAR_BUNDLE)
    if not isinstance(path, str):
        raise FileNotFoundError(SIDECAR_BUNDLE)
    return Path(path).read_bytes().replace(REDOCLY_LOGO, EMPTY_IMAGE)


def redoc_bundle_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(redoc_bundle(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


class RedocView(SpectacularRedocView):
    """drf-spectacular's ReDoc view, with the bundle above and a policy that keeps the page on this server."""

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("redoc-bundle")

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = REDOC_CONTENT_SECURITY_POLICY
        return response
