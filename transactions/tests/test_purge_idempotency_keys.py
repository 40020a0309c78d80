from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from transactions.models import IdempotencyRecord


def _record(user, key, expires_at):
    return IdempotencyRecord.objects.create(
        user=user,
        key=key,
        endpoint="deposit",
        fingerprint="0" * 64,
        status_code=201,
        response_body="{}",
        expires_at=expires_at,
    )


@pytest.mark.django_db
def test_purge_deletes_only_expired_idempotency_keys(user):
    now = timezone.now()
    _record(user, "old", now - timedelta(seconds=1))
    kept = _record(user, "fresh", now + timedelta(hours=1))
    out = StringIO()

    call_command("purge_idempotency_keys", stdout=out)

    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [kept.pk]
    assert "Deleted 1 expired" in out.getvalue()
