"""The history's cursor: where a page starts, as an opaque, URL-safe token.

Apart from the pagination class so that code outside Django's request cycle
(the benchmark harness) writes the same tokens as the service.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from django.db.models import Q


@dataclass(frozen=True)
class HistoryCursor:
    """Where a history page starts: strictly after the entry at (`created_at`, `entry_id`).

    `backwards` pages go towards newer entries (a `previous` link). A backwards
    cursor without a position starts at the oldest end: the last page.
    """

    backwards: bool
    created_at: datetime | None = None
    entry_id: UUID | None = None

    def beyond(self) -> Q:
        """The entries strictly after this cursor's position in its direction, with a plain range on `created_at`.

        The range lets the history index bound its scan; the rest orders entries of the same time by id.
        """
        if self.backwards:
            return Q(created_at__gte=self.created_at) & (Q(created_at__gt=self.created_at) | Q(id__gt=self.entry_id))
        return Q(created_at__lte=self.created_at) & (Q(created_at__lt=self.created_at) | Q(id__lt=self.entry_id))

    def encode(self) -> str:
        fields = []
        if self.created_at is not None and self.entry_id is not None:
            moment = self.created_at.astimezone(UTC).isoformat(timespec="microseconds")
            fields += [f"p={moment}", f"i={self.entry_id}"]
        if self.backwards:
            fields.append("r=1")
        # URL-safe and unpadded: the link needs no percent-encoding, and `decode` has one spelling to expect.
        return urlsafe_b64encode("&".join(fields).encode("ascii")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> HistoryCursor:
        """The cursor `encode` wrote as `token`; ValueError for anything else."""
        if not token.isascii() or len(token) > 128:
            raise ValueError("not a cursor")
        try:
            text = b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("not a cursor") from exc
        fields = dict(field.partition("=")[::2] for field in text.split("&", 3))
        created_at = datetime.fromisoformat(fields["p"]).astimezone(UTC) if "p" in fields else None
        cursor = cls(
            backwards=fields.get("r") == "1",
            created_at=created_at,
            entry_id=UUID(fields["i"]) if "i" in fields else None,
        )
        # Only the exact spelling `encode` gives back is a cursor: every other string (another
        # time zone or format, a stray field, a forward cursor without a position) is malformed.
        if cursor.encode() != token or (cursor.created_at is None and not cursor.backwards):
            raise ValueError("not a cursor")
        return cursor
