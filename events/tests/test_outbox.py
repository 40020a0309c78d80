"""The outbox: an event exists if and only if its change committed, numbered per user with no gap."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from events import outbox
from events.models import STAFF_STREAM, Event, EventType
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.holds import backdate
from tests.test_concurrency import run_in_threads
from transactions.holds.services import hold_capture, hold_create, hold_void, holds_expire
from transactions.services import deposit_create, transfer_create, withdrawal_create
from wallet_project.errors import InsufficientFunds
from wallets.models import Wallet
from wallets.services import balance_create, exchange_rate_create, wallet_create, wallet_set_frozen


def events_of(user) -> list[Event]:
    return list(Event.objects.filter(stream_id=user.pk).order_by("sequence"))


def types_of(user) -> list[str]:
    return [event.type for event in events_of(user)]


def balance_of(user, amount="100.00", currency="USD"):
    return funded_balance(wallet=WalletFactory(owner=user), amount=amount, currency=currency)


@pytest.mark.django_db
def test_a_committed_movement_writes_one_event_per_owner_of_its_balances(user, other_user):
    mine, also_mine, theirs = balance_of(user), balance_of(user), balance_of(other_user)
    before_mine, before_theirs = len(events_of(user)), len(events_of(other_user))

    own = transfer_create(
        from_wallet_balance_id=mine.pk,
        to_wallet_balance_id=also_mine.pk,
        amount=Decimal("1.00"),
        owner=user,
        created_by=user,
    )
    out = transfer_create(
        from_wallet_balance_id=mine.pk,
        to_wallet_balance_id=theirs.pk,
        amount=Decimal("2.00"),
        owner=user,
        created_by=user,
    )

    mine_new, theirs_new = events_of(user)[before_mine:], events_of(other_user)[before_theirs:]
    assert [(event.type, event.reference) for event in mine_new] == [
        (EventType.MOVEMENT_CREATED, own.reference),
        (EventType.MOVEMENT_CREATED, out.reference),
    ]
    assert [(event.type, event.reference) for event in theirs_new] == [(EventType.MOVEMENT_CREATED, out.reference)]


@pytest.mark.django_db
def test_a_refused_movement_writes_no_event(user):
    balance = balance_of(user, amount="10.00")
    before = Event.objects.count()

    with pytest.raises(InsufficientFunds):
        withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("10.01"), owner=user, created_by=user)

    assert Event.objects.count() == before


@pytest.mark.django_db
def test_a_movement_rolled_back_after_its_writes_leaves_no_event_and_no_gap(user):
    balance = balance_of(user)
    last = events_of(user)[-1].sequence

    class Boom(Exception):
        pass

    def explode(entry):
        raise Boom()

    with pytest.raises(Boom):
        deposit_create(
            wallet_balance_id=balance.pk, amount=Decimal("1.00"), owner=user, created_by=user, on_booked=explode
        )
    deposit_create(wallet_balance_id=balance.pk, amount=Decimal("1.00"), owner=user, created_by=user)

    assert [event.sequence for event in events_of(user)][-2:] == [last, last + 1]


@pytest.mark.django_db
def test_wallets_balances_and_freezes_tell_their_owner():
    owner = UserFactory()
    wallet = wallet_create(owner=owner, name="Travel")
    balance_create(wallet_id=wallet.pk, owner=owner, currency="USD", initial_amount=None, created_by=owner)
    balance_create(wallet_id=wallet.pk, owner=owner, currency="EUR", initial_amount=Decimal("5.00"), created_by=owner)
    wallet_set_frozen(wallet_id=wallet.pk, frozen=True)
    wallet_set_frozen(wallet_id=wallet.pk, frozen=True)  # no change, no event
    wallet_set_frozen(wallet_id=wallet.pk, frozen=False)

    events = events_of(owner)
    assert [event.type for event in events] == [
        EventType.WALLET_CREATED,
        EventType.BALANCE_CREATED,
        EventType.BALANCE_CREATED,
        EventType.MOVEMENT_CREATED,  # the opening deposit, after its balance
        EventType.WALLET_FROZEN,
        EventType.WALLET_UNFROZEN,
    ]
    assert [event.sequence for event in events] == [1, 2, 3, 4, 5, 6]
    assert events[0].data["name"] == "Travel" and events[0].data["balances"] == []
    assert events[2].data["currency"] == "EUR" and events[2].data["amount"] == "0.00"
    assert events[4].data["is_frozen"] is True and len(events[4].data["balances"]) == 2
    assert Wallet.objects.get(pk=wallet.pk).is_frozen is False


@pytest.mark.django_db
def test_rate_changes_go_to_the_staff_stream_only(staff_user):
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.95"), created_by=staff_user)

    (event,) = Event.objects.filter(type=EventType.RATE_CHANGED)
    assert event.stream_id == STAFF_STREAM and event.user_id is None
    assert event.data["rate"] == "0.95" and event.data["previous_rate"] == "0.91"
    assert not Event.objects.filter(stream_id=staff_user.pk, type=EventType.RATE_CHANGED).exists()


@pytest.mark.django_db
def test_a_holds_life_is_told_in_order(user):
    balance = balance_of(user)
    hold = hold_create(wallet_balance_id=balance.pk, amount=Decimal("30.00"), owner=user, created_by=user)
    hold_capture(hold_id=hold.pk, amount=Decimal("10.00"), final=False, owner=user, created_by=user)
    hold_void(hold_id=hold.pk, owner=user, created_by=user)
    expiring = hold_create(
        wallet_balance_id=balance.pk, amount=Decimal("5.00"), owner=user, created_by=user, expires_in=60
    )
    backdate(expiring, 61)
    holds_expire()

    tail = events_of(user)[-6:]
    assert [event.type for event in tail] == [
        EventType.HOLD_CREATED,
        EventType.MOVEMENT_CREATED,  # the capture's entry
        EventType.HOLD_CAPTURED,
        EventType.HOLD_VOIDED,
        EventType.HOLD_CREATED,
        EventType.HOLD_EXPIRED,
    ]
    assert tail[2].data["captured_amount"] == "10.00" and tail[2].data["status"] == "active"
    assert tail[3].data["status"] == "voided"
    assert tail[5].data["status"] == "expired" and tail[5].data["id"] == str(expiring.pk)


@pytest.mark.django_db(transaction=True)
def test_sequences_have_no_gap_under_concurrent_movements_of_both_directions():
    alice, bob = UserFactory(), UserFactory()
    a, b = balance_of(alice, amount="1000.00"), balance_of(bob, amount="1000.00")
    rounds = 40

    def move(index: int):
        source, destination, actor = (a, b, alice) if index % 2 else (b, a, bob)
        if index % 5 == 0:  # some refused, rolled back after taking their locks
            return withdrawal_create(
                wallet_balance_id=source.pk, amount=Decimal("5000.00"), owner=actor, created_by=actor
            )
        return transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("1.00"),
            owner=actor,
            created_by=actor,
        )

    outcomes = run_in_threads(move, rounds)

    moved = sum(1 for outcome in outcomes if outcome.error is None)
    assert all(isinstance(outcome.error, InsufficientFunds) for outcome in outcomes if outcome.error is not None)
    for user in (alice, bob):
        sequences = [event.sequence for event in events_of(user)]
        assert sequences == list(range(1, len(sequences) + 1))
    # Every committed transfer told both owners; the refusals told no one.
    movement_events = Event.objects.filter(type=EventType.MOVEMENT_CREATED, stream_id__in=[alice.pk, bob.pk])
    funding = 2
    assert movement_events.count() == funding + 2 * moved


@pytest.mark.django_db
def test_a_transfer_that_releases_expired_holds_tells_both_streams_in_one_statement(user, other_user):
    mine, theirs = balance_of(user), balance_of(other_user)
    for balance, owner in ((mine, user), (theirs, other_user)):
        backdate(
            hold_create(
                wallet_balance_id=balance.pk, amount=Decimal("5.00"), owner=owner, created_by=owner, expires_in=60
            ),
            61,
        )

    with CaptureQueriesContext(connection) as queries:
        transfer = transfer_create(
            from_wallet_balance_id=mine.pk,
            to_wallet_balance_id=theirs.pk,
            amount=Decimal("1.00"),
            owner=user,
            created_by=user,
        )

    # Every stream's counter is taken by one statement, in sorted order: no two transactions can each hold
    # one counter and wait for the other's.
    assert len([query for query in queries.captured_queries if "events_eventstream" in query["sql"]]) == 1
    for owner in (user, other_user):
        assert [(event.type, event.reference) for event in events_of(owner)[-2:]] == [
            (EventType.HOLD_EXPIRED, None),
            (EventType.MOVEMENT_CREATED, transfer.reference),
        ]


@pytest.mark.django_db
def test_several_events_of_one_stream_in_one_statement_are_numbered_in_order_without_a_gap(user, other_user):
    balance_of(user)  # the user's stream has events already
    before = len(events_of(user))

    outbox.record_all(
        [
            outbox.event(EventType.LOYALTY_UNFUNDED, user_id=user.pk, data={"n": 1}),
            outbox.event(EventType.LOYALTY_UNFUNDED, user_id=other_user.pk, data={"n": 2}),
            outbox.event(EventType.LOYALTY_UNFUNDED, user_id=user.pk, data={"n": 3}),
            outbox.event(EventType.RATE_CHANGED, user_id=None, data={"n": 4}),
        ]
    )

    mine = events_of(user)
    assert [event.sequence for event in mine] == list(range(1, before + 3))
    assert [event.data for event in mine[before:]] == [{"n": 1}, {"n": 3}]
    assert [event.data for event in events_of(other_user)] == [{"n": 2}]
    assert Event.objects.get(stream_id=STAFF_STREAM, data={"n": 4}).user_id is None


@pytest.mark.django_db
def test_many_events_in_one_statement_go_as_arrays_numbered_as_values_are(user, other_user):
    balance_of(user)
    before = len(events_of(user))
    staff_before = Event.objects.filter(stream_id=STAFF_STREAM).count()
    many = outbox.EVENTS_AS_VALUES_AT_MOST + 3
    events = [
        outbox.event(EventType.LOYALTY_UNFUNDED, user_id=(user if n % 3 else other_user).pk, data={"n": n})
        for n in range(many)
    ]
    events += [outbox.event(EventType.RATE_CHANGED, user_id=None, data={"n": "staff"})]
    events += [(user.pk, user.pk, EventType.MOVEMENT_CREATED, user.pk, None)]  # a movement's: no data

    with CaptureQueriesContext(connection) as queries:
        outbox.record_all(events)

    assert "unnest(" in queries.captured_queries[-1]["sql"] and "VALUES" not in queries.captured_queries[-1]["sql"]
    mine = events_of(user)
    assert [event.sequence for event in mine] == list(range(1, len(mine) + 1))
    assert [event.data for event in mine[before:]] == [{"n": n} for n in range(many) if n % 3] + [None]
    assert [event.data for event in events_of(other_user)] == [{"n": n} for n in range(many) if not n % 3]
    staff = Event.objects.filter(stream_id=STAFF_STREAM).order_by("sequence")
    assert staff.count() == staff_before + 1 and staff.last().user_id is None


@pytest.mark.django_db
def test_many_events_lock_their_streams_in_sorted_order(user, other_user):
    third = UserFactory()
    streams = sorted([user.pk, other_user.pk, third.pk])
    events = [
        outbox.event(EventType.LOYALTY_UNFUNDED, user_id=stream, data={"n": n})
        for n, stream in enumerate(reversed(streams * 4))
    ]

    _, params = outbox.statement(events)

    # One array literal per column (wallet_project/pg_arrays.py): the streams sorted, four events each.
    assert params[0] == "{" + ",".join(f"{stream.int:032x}" for stream in streams) + "}"
    assert params[1] == "{4,4,4}"


@pytest.mark.parametrize("type_", ["movement.deleted", "MOVEMENT.CREATED"])
@pytest.mark.django_db
def test_the_database_refuses_an_event_of_an_unknown_type(user, type_):
    with pytest.raises(IntegrityError, match="event_type_known"), transaction.atomic():
        outbox.record_all([(user.pk, user.pk, type_, None, {"id": "x"})])
