"""Instants asked for in a query string (`as_of`, a statement's `from` and `to`).

An instant is an RFC 3339 date-time (ISO 8601 with its zone): the OpenAPI
document's `format: date-time` with `INSTANT_PATTERN`, and this module reads
every string they admit. Without a zone an instant would mean a different
moment on each client, so a naive one is refused. Instants too early or too
late for Python's calendar once moved to UTC (year 1 with a positive offset,
year 9999 with a negative one) become the earliest or the latest instant:
before any entry, or after now, which the callers already answer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

# ASCII digits only (`\d` takes other scripts' digits too); seconds up to 59 (a leap second has no datetime);
# any number of fractional digits, of which microseconds are kept; no year 0000 (no such year in Python).
INSTANT_PATTERN = (
    r"^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_INSTANT_RE = re.compile(
    r"(?P<date>(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-5][0-9])"
    r"(?:\.(?P<fraction>[0-9]+))?(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<zone_hour>[0-9]{2}):(?P<zone_minute>[0-9]{2}))"
)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
INVALID_INSTANT = "Use an ISO 8601 date and time with its zone, e.g. 2026-11-25T10:05:00Z."


def parse_instant(text: str) -> datetime | None:
    """The instant `text` names, in UTC; None when it is not an RFC 3339 date-time with a zone."""
    match = _INSTANT_RE.fullmatch(text)
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")  # finer than a microsecond: cut, never rounded up
    zone = UTC
    if not match["utc"]:
        offset = timedelta(hours=int(match["zone_hour"]), minutes=int(match["zone_minute"]))
        if offset >= timedelta(hours=24) or int(match["zone_minute"]) > 59:
            return None
        zone = timezone(-offset if match["sign"] == "-" else offset)
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        moment = datetime(
            year, month, day, int(match["hour"]), int(match["minute"]), int(match["second"]), int(fraction), zone
        )
    except ValueError:  # 2026-02-30, hour 24, …
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return EARLIEST if moment.year == 1 else LATEST


@extend_schema_field(
    {
        "type": "string",
        "format": "date-time",
        "pattern": INSTANT_PATTERN,
        "example": "2026-11-25T10:05:00Z",
    }
)
class InstantField(serializers.Field):
    """An RFC 3339 date-time with its zone (`Z` or `±hh:mm`), read as an aware datetime in UTC."""

    default_error_messages = {"invalid": INVALID_INSTANT}

    def get_value(self, dictionary: Any) -> Any:
        # Present is present: DRF would take `?as_of=` for an absent parameter, the schema for a malformed one.
        return dictionary[self.field_name] if self.field_name in dictionary else empty

    def to_internal_value(self, data: Any) -> datetime:
        moment = parse_instant(data) if isinstance(data, str) else None
        if moment is None:
            self.fail("invalid")
        return moment

    def to_representation(self, value: datetime) -> str:
        return serializers.DateTimeField().to_representation(value)
