"""Idempotency keys for the money movements (API.md, "Idempotency").

The first request with a key is carried out; its 201 answer is stored in the
same database transaction as the movement (through the service's `on_booked`
hook), a 422 refusal is stored after the rollback. A retry with the same key,
endpoint and request (compared after parsing) gets the stored answer back with
`Idempotent-Replayed: true`; another endpoint or request answers 422
`idempotency_key_reused`; a retry while the first still runs answers 409
`idempotency_in_progress` (a Redis lock on the key, and the unique
constraint on (user, key) behind it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from transactions.models import IdempotencyRecord
from wallet_project.errors import (
    DomainError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidInput,
    error_body,
)
from wallets.locks import exclusive

Result = TypeVar("Result")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
UNIQUE_CONSTRAINT = "idempotency_key_unique_per_user"


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):  # a batch's movements
        return [_canonical(item) for item in value]
    return value


def fingerprint(*, endpoint: str, data: dict[str, Any]) -> str:
    """The same for "10", 10 and "10.00": the request as parsed, not as spelled."""
    text = json.dumps({"endpoint": endpoint, "data": _canonical(data)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_from(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        message = "An Idempotency-Key has 1 to 255 characters."
        raise InvalidInput(message, details={HEADER: [message]})
    return key


def _replay(record: IdempotencyRecord) -> Response:
    # json.loads keeps the stored key order, so the replay renders to the same bytes.
    return Response(json.loads(record.response_body), status=record.status_code, headers={REPLAYED_HEADER: "true"})


def _stored(*, user_id: Any, key: str, endpoint: str, digest: str) -> Response | None:
    record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if record is None:
        return None
    if record.expires_at <= timezone.now():
        record.delete()
        return None
    if record.endpoint != endpoint or record.fingerprint != digest:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with another endpoint or request.",
            details={"endpoint": record.endpoint},
        )
    return _replay(record)


def _is_key_conflict(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == UNIQUE_CONSTRAINT


def respond(
    *,
    request: Request,
    endpoint: str,
    data: dict[str, Any],
    perform: Callable[[Callable[[Result], None] | None], Result],
    render: Callable[[Result], dict[str, Any]],
    status: HTTPStatus = HTTPStatus.CREATED,
) -> Response:
    """Carry out a movement once per Idempotency-Key (or plainly, without one) and answer `status` (201).

    `perform(hook)` carries it out and returns what `render` renders; it calls
    `hook` with that same result inside its database transaction (the service's
    `on_booked`), where the answer is stored with it.
    """
    key = key_from(request)
    if key is None:
        return Response(render(perform(None)), status=status)

    user_id = request.user.pk
    digest = fingerprint(endpoint=endpoint, data=data)
    with exclusive(f"wallet:idempotency:{user_id}:{hashlib.sha256(key.encode()).hexdigest()}") as acquired:
        if not acquired:
            raise IdempotencyInProgress()
        # Under the key's lock: a finished first request is replayed, a running one got 409 above.
        replay = _stored(user_id=user_id, key=key, endpoint=endpoint, digest=digest)
        if replay is not None:
            return replay
        expires_at = timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
        answer: dict[str, Any] = {}

        def store(status_code: int, body: dict[str, Any]) -> None:
            IdempotencyRecord.objects.create(
                user_id=user_id,
                key=key,
                endpoint=endpoint,
                fingerprint=digest,
                status_code=status_code,
                response_body=json.dumps(body, cls=DjangoJSONEncoder),
                expires_at=expires_at,
            )

        def store_created(result: Result) -> None:
            answer["body"] = render(result)
            store(status, answer["body"])

        try:
            perform(store_created)
        except DomainError as exc:
            if exc.status_code == HTTPStatus.UNPROCESSABLE_ENTITY:
                # Stored after the movement's rollback: a retry cannot succeed where this was refused.
                with transaction.atomic():
                    store(exc.status_code, error_body(exc.code, exc.message, exc.details))
            raise
        except IntegrityError as exc:
            if _is_key_conflict(exc):  # another request with this key committed first
                raise IdempotencyInProgress() from exc
            raise
    return Response(answer["body"], status=status)


def idempotency_records_purge() -> int:
    """Delete the expired records; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
