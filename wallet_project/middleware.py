"""Request id, the one structured access-log line per request, and `Cache-Control: no-store` on the API."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse

from wallet_project.logging import request_id_var

access_logger = logging.getLogger("wallet.access")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """Keeps a well-formed incoming `X-Request-ID` (or makes one), returns it, marks API answers
    `Cache-Control: no-store`, and logs the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if request.path_info.startswith("/api/"):
                # API answers carry tokens, balances and ledger entries: no shared or browser cache may keep
                # them. Set here, once, so both roads of a movement (transactions/fast_path.py) send it.
                response["Cache-Control"] = "no-store"
            user = request.__dict__.get("user")
            user_id = getattr(user, "pk", None) if user is not None and user.is_authenticated else None
            access_logger.info(
                "request",
                extra={
                    "user_id": str(user_id) if user_id else None,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


class _SiteOnly:
    """Runs the middleware it is mixed into for the admin and the docs, and steps around it for `/api/`.

    The API authenticates with JWT in the `Authorization` header: it has no
    session and no flash messages. Sessions, `request.user` from the session
    and messages are the admin's, and cost every API request a few percent of
    its Python time for nothing (docs/PERFORMANCE.md, "API requests skip the
    admin's middleware"). Subclasses of Django's
    own classes, so that the admin's checks still find them. CSRF and
    X-Frame-Options stay on every path, as `check --deploy` wants them.
    """

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SiteSessionMiddleware(_SiteOnly, SessionMiddleware):
    pass


class SiteAuthenticationMiddleware(_SiteOnly, AuthenticationMiddleware):
    pass


class SiteMessageMiddleware(_SiteOnly, MessageMiddleware):
    pass
