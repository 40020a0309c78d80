"""Time-ordered UUIDs (version 7, RFC 9562) for the rows of the ledger.

A ledger only grows. With random (version 4) ids, every new entry lands on a
random leaf page of its primary-key index and of its `reference` index: on a
ledger of a million entries those indexes outgrow PostgreSQL's buffers, and
each insert reads, dirties and, after every checkpoint, logs a full image of
a page nobody else needs. A version 7 UUID starts with the Unix time in
milliseconds, so new ids sort after older ones and their inserts stay on the
rightmost pages. On a 1,000,000-entry ledger, cold transfers ran 521 a second
against 493 with version 4 ids, faster in each of five interleaved rounds
(docs/PERFORMANCE.md, "Time-ordered ledger ids").

The other 74 bits are random (`os.urandom`), as unguessable as a version 4
id's 122 minus what the creation time, already shown as `created_at`, gives
away. Python 3.14 has `uuid.uuid7()`; this is the same layout for 3.11.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from uuid import UUID

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def uuid7() -> UUID:
    """A version 7 UUID: 48 bits of Unix milliseconds, the version, 12 random bits, the variant, 62 random bits."""
    milliseconds = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")  # 80 bits, of which 74 are used
    return UUID(
        int=(milliseconds & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | ((random >> 62) & 0xFFF) << 64
        | _VARIANT_RFC
        | (random & ((1 << 62) - 1))
    )


def uuid7_floor(moment: datetime) -> UUID:
    """The smallest id `uuid7` can give at `moment` (or later): its milliseconds and nothing else.

    Entry ids sort by their time, so `id >= uuid7_floor(t)` is a range of the ledger's primary key that holds
    every entry made from `t` on: a time range PostgreSQL reads from the index, with no index on `created_at`.
    The ids' time is the web worker's clock, `created_at` the database's: callers widen the range by a margin
    and filter on `created_at` as well.
    """
    milliseconds = int(moment.timestamp() * 1000)
    return UUID(int=(max(milliseconds, 0) & 0xFFFF_FFFF_FFFF) << 80)
