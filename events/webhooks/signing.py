"""Secrets and signatures, as the Standard Webhooks specification says, through its reference library.

A secret is `whsec_` and the base64 of 32 random bytes. A delivery is signed over
`{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 by each secret that signs for its endpoint: the
current one, and for a day after a rotation the previous one too, so that `webhook-signature` then carries two
signatures, space-separated, and a receiver still holding the old secret verifies it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from standardwebhooks.webhooks import Webhook

from events.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# How long the previous secret keeps signing after a rotation.
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    """The secrets that sign for `endpoint` at `now`: its own, and the previous one until it expires."""
    keys = [endpoint.secret]
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires_at is not None and now < expires_at:
        keys.append(endpoint.previous_secret)
    return keys


def headers(*, message_id: str, timestamp: datetime, body: bytes, keys: Sequence[str]) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers of one POST of `body`."""
    signatures = [Webhook(key).sign(msg_id=message_id, timestamp=timestamp, data=body) for key in keys]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
