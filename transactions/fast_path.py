"""The plain money movement, served without DRF's request and response machinery.

A deposit, withdrawal, payment or transfer is almost always the same request:
a JSON object of a few fields, a Bearer access token, no idempotency key.
For it, DRF's dispatch (its `Request` wrapper, content negotiation, the
`Response` and its rendering, the view's bookkeeping) was a fifth of the
instructions of a whole transfer request (docs/PERFORMANCE.md, "Plain movements
skip DRF's dispatch").

`fast_movement_view` wraps the DRF view of each of the four endpoints. It
serves the plain case itself, calling the pieces DRF would call, in DRF's
order: the view's authentication class, its permission (`IsAuthenticated`),
its throttles, its parser, the input serializer (through the quick
validation), the view module's `movement_execute` (the one call of the
service), the exception handler, the movement's own renderer
(`Movement.render`). Every other request goes to the DRF view unchanged, and
always **before anything with an effect** (the throttle's count is the
first), so nothing is done twice:

* not `POST`, a query string, URL arguments;
* a `Content-Type` other than exactly `application/json`;
* an `Accept` other than none, `*/*` or `application/json` (DRF answers 406,
  or indents on `application/json; indent=4`);
* an `Idempotency-Key` (the stored-answer road of `transactions.idempotency`);
* a body that is empty, over 64 KiB, not JSON, or not plainly valid (DRF's
  serializer then gives its exact errors);
* no credentials, or credentials the authentication class refuses (DRF
  answers 401 with its `WWW-Authenticate`).

The user's throttle is not asked on its own: its count goes with the
movement to the call that takes the balance locks (`throttling.Admission`, a
`wallets.locks.Gate` handed over by `movement_execute`), which makes it
before taking them, in the same Redis round trip. A movement
refused before its locks (invalid input the service judges, an unknown
balance) is counted then, on its way out, and answers 429 if that count is
over the limit, as DRF, which counts first, would have.

Django's middleware runs as for any view (host check, request id, access
log, security headers, CSRF exemption). The answers are DRF's to the byte,
headers included: `tests/test_fast_path.py` sends every kind of request both
ways and compares. `MOVEMENTS_FAST_PATH=false` turns the fast path off.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connections
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions, permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from transactions.views import MOVEMENTS, TransactionViewSet, movement_execute
from wallet_project.parsers import DecimalJSONParser, parse_json
from wallet_project.throttling import Admission, RedisRateThrottle

_MAX_BODY = 64 * 1024
_PLAIN_ACCEPT = frozenset({"*/*", "application/json"})
_MEDIA_TYPE = "application/json"
_RENDERER = JSONRenderer()


def _supported(view_class: type[APIView]) -> bool:
    """Whether the DRF view is configured as this module assumes; otherwise every request goes to it."""
    return (
        len(view_class.authentication_classes) == 1
        and list(view_class.permission_classes) == [permissions.IsAuthenticated]
        and list(view_class.renderer_classes) == [JSONRenderer]
        and list(view_class.parser_classes) == [DecimalJSONParser]
        and view_class.versioning_class is None
        and not any(connections.settings[alias].get("ATOMIC_REQUESTS") for alias in connections.settings)
    )


def _plain_body(request: HttpRequest) -> bool:
    meta = request.META
    if meta.get("QUERY_STRING") or "HTTP_IDEMPOTENCY_KEY" in meta:
        return False
    if request.content_type != _MEDIA_TYPE or request.content_params:
        return False
    if meta.get("HTTP_ACCEPT", "*/*") not in _PLAIN_ACCEPT:
        return False
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return 0 < length <= _MAX_BODY


def _answer(data: Any, status: int, allow: str, headers: Any = ()) -> HttpResponse:
    """What DRF's `Response` renders to, for a JSON body (`JSONRenderer`, no indent)."""
    response = HttpResponse(_RENDERER.render(data, _MEDIA_TYPE, {}), status=status, content_type=_MEDIA_TYPE)
    response["Allow"] = allow
    for name, value in headers:
        response[name] = value
    return response


def _longest(waits: list[float | None]) -> float | None:
    """DRF's wait for several refusing throttles: the longest that is known."""
    return max((wait for wait in waits if wait is not None), default=None)


def fast_movement_view(drf_view: Callable[..., HttpResponse], endpoint: str) -> Callable[..., HttpResponse]:
    """The DRF view of a movement endpoint, with its plain case served directly (see the module docstring)."""
    view_class: type[APIView] = drf_view.cls  # type: ignore[attr-defined]
    if not issubclass(view_class, TransactionViewSet) or not _supported(view_class):
        return drf_view
    movement = MOVEMENTS[endpoint]
    authenticator = view_class.authentication_classes[0]()
    throttle_classes = list(view_class.throttle_classes)
    allow = ", ".join(
        method.upper()
        for method in view_class.http_method_names
        if method in drf_view.actions or hasattr(view_class, method)  # type: ignore[attr-defined]
    )

    @functools.wraps(drf_view)  # keeps `cls`, `actions`, `csrf_exempt`: the schema and middleware see the DRF view
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if args or kwargs or request.method != "POST" or not settings.MOVEMENTS_FAST_PATH or not _plain_body(request):
            return drf_view(request, *args, **kwargs)
        try:
            credentials = authenticator.authenticate(request)
        except Exception:  # noqa: BLE001 - DRF authenticates again and answers the refusal its own way
            credentials = None
        if credentials is None or not credentials[0].is_authenticated:
            return drf_view(request)
        try:
            data = movement.input_serializer.quick_validated(parse_json(request.body, settings.DEFAULT_CHARSET))
        except (exceptions.ParseError, RequestDataTooBig):
            data = None  # DRF reads the body again and gives the refusal (400 or 413) its own way
        if data is None:
            return drf_view(request)  # the body stays readable: Django keeps it once read

        user, token = credentials
        request.user = user  # as DRF's Request does: the access log reads it
        request.auth = token  # type: ignore[attr-defined]
        admission: Admission | None = None
        waits: list[float | None] = []
        for throttle in (throttle_class() for throttle_class in throttle_classes):
            if admission is None and isinstance(throttle, RedisRateThrottle):
                admission = throttle.admission(request)  # type: ignore[arg-type]
                if admission is not None:
                    continue  # counted with the locks
            if not throttle.allow_request(request, None):  # type: ignore[arg-type]
                waits.append(throttle.wait())
        try:
            if waits:
                raise exceptions.Throttled(_longest(waits))
            entry = movement_execute(endpoint=endpoint, data=data, user=user, token=token, gate=admission)
        except Exception as exc:
            error: Exception = exc
            if admission is not None and not admission.settle(request):  # type: ignore[arg-type]
                # Refused before its locks, and over the limit: DRF's answer is the throttle's.
                error = exceptions.Throttled(_longest([*waits, admission.throttle.wait()]))
            handler = view_class.settings.EXCEPTION_HANDLER
            refusal = handler(error, {"view": None, "args": (), "kwargs": {}, "request": request})
            if refusal is None:
                raise
            headers = [(name, value) for name, value in refusal.items() if name.lower() != "content-type"]
            return _answer(refusal.data, refusal.status_code, allow, headers)
        if admission is not None:
            # Counted by the locks, so nothing to do; a movement booked without them would be counted here.
            admission.settle(request)  # type: ignore[arg-type]
        return _answer(movement.render(entry), HTTPStatus.CREATED, allow)

    return view
