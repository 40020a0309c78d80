"""The event types an endpoint may subscribe to, and whether it receives an event of a given type.

An endpoint lists types (`movement.created`), prefixes of a family (`hold.*`) or `*` (everything of its
user's stream). `rate.changed` is the staff's: it is never in a user's stream, and may not be asked for.
"""

from __future__ import annotations

from collections.abc import Iterable

from events.models import EventType

EVERYTHING = "*"
STAFF_ONLY = frozenset({EventType.RATE_CHANGED.value})
SUBSCRIBABLE_TYPES: tuple[str, ...] = tuple(value for value in EventType.values if value not in STAFF_ONLY)
PREFIXES: tuple[str, ...] = tuple(dict.fromkeys(f"{value.split('.', 1)[0]}.*" for value in SUBSCRIBABLE_TYPES))
# Everything an endpoint's `event_types` may hold, in the order the documentation lists them.
CHOICES: tuple[str, ...] = (*SUBSCRIBABLE_TYPES, *PREFIXES, EVERYTHING)


def normalized(event_types: Iterable[str]) -> list[str]:
    """The list as given, each entry once (in its first place)."""
    return list(dict.fromkeys(event_types))


def receives(event_types: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to `event_types` receives an event of `event_type`."""
    for pattern in event_types:
        if pattern == EVERYTHING or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
