"""Time-ordered ledger ids (wallet_project/ids.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.services import transfer_create
from wallet_project.ids import uuid7, uuid7_floor


def milliseconds_of(value: UUID) -> int:
    return value.int >> 80


def test_a_uuid7_has_version_7_the_rfc_variant_and_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000

    assert value.version == 7
    assert value.variant == "specified in RFC 4122"
    assert before <= milliseconds_of(value) <= after
    assert UUID(str(value)) == value


def test_uuid7s_of_later_milliseconds_sort_after_earlier_ones() -> None:
    earlier = [uuid7() for _ in range(50)]
    time.sleep(0.002)
    later = [uuid7() for _ in range(50)]

    assert max(earlier) < min(later)
    assert max(str(value) for value in earlier) < min(str(value) for value in later), "text order too (PostgreSQL's)"


def test_uuid7s_do_not_repeat() -> None:
    values = [uuid7() for _ in range(20_000)]  # many in each millisecond: the random bits tell them apart

    assert len(set(values)) == len(values)
    assert len({value.int & ((1 << 62) - 1) for value in values}) == len(values)


def test_a_transfer_writes_time_ordered_entry_ids_and_reference(user, other_user) -> None:
    source = funded_balance(wallet=WalletFactory(owner=user), currency="USD", amount="10.00")
    target = funded_balance(wallet=WalletFactory(owner=other_user), currency="USD", amount="0.00")
    started = time.time_ns() // 1_000_000

    out = transfer_create(
        owner=user,
        created_by=user,
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=target.pk,
        amount=Decimal("1.00"),
    )

    entries = list(Transaction.objects.filter(reference=out.reference))
    assert len(entries) == 2
    for value in [out.reference, *(entry.pk for entry in entries)]:
        assert value.version == 7
        assert milliseconds_of(value) >= started
    assert Transaction._meta.pk.default is uuid7, "entries made through the ORM get one too"


def test_uuid7_floor_sorts_before_every_id_of_its_millisecond_and_after_every_earlier_one() -> None:
    moment = datetime(2026, 11, 26, 10, 5, 3, 250_000, tzinfo=UTC)
    milliseconds = int(moment.timestamp() * 1000)
    floor = uuid7_floor(moment)

    assert milliseconds_of(floor) == milliseconds
    # The highest id of the millisecond before, and the lowest a uuid7 of this millisecond can be.
    assert UUID(int=(milliseconds << 80) - 1) < floor
    assert floor < UUID(int=(milliseconds << 80) | (0x7 << 76) | (0b10 << 62))
    assert uuid7_floor(moment + timedelta(milliseconds=1)) > floor
