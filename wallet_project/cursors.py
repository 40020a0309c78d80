"""The history's cursor: where a page starts, as a short URL-safe token.

`n<micros>.<id>` pages towards older entries (a `next` link), `p<micros>.<id>`
towards newer ones (a `previous` link), each strictly beyond the entry at that
position: its `created_at` in microseconds since 1970 (UTC) and its id in 32
lowercase hex digits. A lone `p` starts from the oldest end (the last page).
Every token that HISTORY_CURSOR_PATTERN admits is a position, so the OpenAPI
document can say exactly which cursors the service reads; each position has one
spelling. Apart from the pagination class so that code outside Django's request
cycle (the benchmark harness) writes the same tokens as the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.db.models import Q

_FORWARDS, _BACKWARDS = "n", "p"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# At most 17 digits, without leading zeros: up to the year 5138, every such number is a datetime.
_MICROS = "0|[1-9][0-9]{0,16}"
HISTORY_CURSOR_PATTERN = rf"^([np]({_MICROS})\.[0-9a-f]{{32}}|p)$"
_CURSOR_RE = re.compile(rf"(?P<direction>[np])(?:(?P<micros>{_MICROS})\.(?P<entry>[0-9a-f]{{32}}))?")


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
        if self.created_at is None or self.entry_id is None:
            return _BACKWARDS if self.backwards else _FORWARDS
        moment = self.created_at - _EPOCH
        micros = (moment.days * 86_400 + moment.seconds) * 1_000_000 + moment.microseconds
        return f"{_BACKWARDS if self.backwards else _FORWARDS}{micros}.{self.entry_id.hex}"

    @classmethod
    def decode(cls, token: str) -> HistoryCursor:
        """The cursor `encode` wrote as `token`; ValueError for anything else (HISTORY_CURSOR_PATTERN says which)."""
        found = _CURSOR_RE.fullmatch(token)
        if found is None:
            raise ValueError("not a cursor")
        backwards = found["direction"] == _BACKWARDS
        if found["micros"] is None:
            if not backwards:
                raise ValueError("not a cursor")  # only the oldest end is a place without an entry
            return cls(backwards=True)
        return cls(
            backwards=backwards,
            created_at=_EPOCH + timedelta(microseconds=int(found["micros"])),
            entry_id=UUID(hex=found["entry"]),
        )
