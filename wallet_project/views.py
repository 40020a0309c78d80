"""Operational endpoints, and the answers for unknown paths, refusals and crashes.

The API and everything else answer in the contract's JSON error shape; pages
under the admin answer as admin pages (with its header, navigation and a way
back), since a person, not a client, is reading them.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from wallet_project.errors import error_response
from wallet_project.replicas import monitor
from wallets.locks import RedisLocks, get_backend

logger = logging.getLogger("wallet.ops")


def health(request: HttpRequest) -> JsonResponse:
    """200 while the process runs."""
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    """200 when the database and Redis answer, else 503 naming which failed; and each read replica's state.

    A replica that is down or behind never makes the instance unready: its reads go to the primary.
    """
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readiness: database failed", extra={"error": type(exc).__name__})
        checks["database"] = "unavailable"
    backend = get_backend()
    if isinstance(backend, RedisLocks):
        try:
            backend.client.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            logger.warning("readiness: redis failed", extra={"error": type(exc).__name__})
            checks["redis"] = "unavailable"
    else:
        checks["redis"] = "not configured (in-process locks, development mode)"
    replicas = _replicas()
    failed = sorted(name for name, state in checks.items() if state == "unavailable")
    if failed:
        return JsonResponse(
            {
                "status": "unavailable",
                "checks": checks,
                **replicas,
                "error": {
                    "code": "service_unavailable",
                    "message": f"Not ready: {', '.join(failed)} unavailable.",
                    "details": {"failed": failed},
                },
            },
            status=HTTPStatus.SERVICE_UNAVAILABLE,
        )
    return JsonResponse({"status": "ok", "checks": checks, **replicas})


def _replicas() -> dict[str, dict[str, dict[str, object]]]:
    """`{"replicas": {alias: {status, lag_seconds}}}` with read replicas configured, else nothing."""
    if not settings.DATABASE_REPLICAS:
        return {}
    return {
        "replicas": {
            state.alias: {
                "status": state.status,
                "lag_seconds": None if state.lag_seconds is None else round(state.lag_seconds, 3),
            }
            for state in monitor.states()
        }
    }


@csrf_exempt  # an unknown API path is 404 for every method, never a CSRF page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    return error_response(HTTPStatus.NOT_FOUND, "not_found", f"No endpoint at {request.path}.")


def server_error(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side; it has been logged."
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(HTTPStatus.BAD_REQUEST, "validation_error", "Bad request.")


def _is_admin_page(request: HttpRequest) -> bool:
    # The admin's own middleware has run for its paths (wallet_project/middleware.py): a user is known.
    return request.path.startswith(reverse("admin:index")) and hasattr(request, "user")


def _admin_error_page(request: HttpRequest, template: str, status: HTTPStatus) -> HttpResponse:
    return render(request, template, admin.site.each_context(request), status=status)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: an admin page under the admin, the contract's JSON 404 everywhere else."""
    if _is_admin_page(request):
        return _admin_error_page(request, "admin/404.html", HTTPStatus.NOT_FOUND)
    return api_not_found(request)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: an admin page under the admin, the contract's JSON 403 everywhere else."""
    if _is_admin_page(request):
        return _admin_error_page(request, "admin/403.html", HTTPStatus.FORBIDDEN)
    return error_response(HTTPStatus.FORBIDDEN, "permission_denied", "You do not have permission to do this.")
