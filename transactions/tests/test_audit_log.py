"""One audit line per money movement, written after the commit and the release of its locks,
listing every entry it wrote."""

import logging
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from tests.factories import WalletFactory, funded_balance
from tests.live import sql_connection
from transactions.batches.services import batch_create
from transactions.services import transfer_create, withdrawal_create
from wallet_project.errors import InsufficientFunds
from wallets.locks import lock_name


def _audit_records(caplog):
    return [record for record in caplog.records if record.name == "wallet.audit"]


@pytest.mark.django_db
def test_a_transfer_writes_one_audit_line_with_both_legs(user, other_user, caplog):
    source = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    destination = funded_balance(currency="JPY", amount="0", wallet=WalletFactory(owner=other_user))
    caplog.set_level(logging.INFO, logger="wallet.audit")
    caplog.clear()  # the opening deposits above wrote theirs

    entry = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("2.50"),
        owner=user,
        created_by=user,
    )

    (record,) = _audit_records(caplog)
    assert record.reference == str(entry.reference)
    assert record.created_by == str(user.pk)
    assert [(leg["type"], leg["amount"], leg["currency"]) for leg in record.entries] == [
        ("TRANSFER_OUT", "2.50", "USD"),
        ("TRANSFER_IN", "396", "JPY"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_audit_line_is_written_after_the_commit_and_the_release_of_the_locks(user, other_user, caplog):
    source = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    destination = funded_balance(amount="0", wallet=WalletFactory(owner=other_user))
    seen: dict = {}
    locks = redis.Redis.from_url(settings.REDIS_URL)

    class Witness(logging.Handler):
        """Looks, from outside the service's connection, at what is true when the line is written."""

        def emit(self, record: logging.LogRecord) -> None:
            with sql_connection() as outside:
                seen["committed"] = outside.execute(
                    "SELECT count(*) FROM transactions_transaction WHERE reference = %s", [record.reference]
                ).fetchone()[0]
            seen["locks_held"] = locks.exists(*(f"lock:{lock_name(b.pk)}" for b in (source, destination)))

    caplog.set_level(logging.INFO, logger="wallet.audit")
    witness = Witness()
    audit = logging.getLogger("wallet.audit")
    audit.addHandler(witness)
    try:
        transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("1.00"),
            owner=user,
            created_by=user,
        )
    finally:
        audit.removeHandler(witness)

    assert seen == {"committed": 2, "locks_held": 0}


@pytest.mark.django_db
def test_a_refused_movement_writes_no_audit_line(user, caplog):
    balance = funded_balance(amount="1.00", wallet=WalletFactory(owner=user))
    caplog.set_level(logging.INFO, logger="wallet.audit")
    caplog.clear()  # the opening deposits above wrote theirs

    with pytest.raises(InsufficientFunds):
        withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("5"), owner=user, created_by=user)

    assert _audit_records(caplog) == []


@pytest.mark.django_db
def test_a_batch_writes_one_audit_line_naming_the_batch_and_each_entrys_movement(user, other_user, caplog):
    source = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    destination = funded_balance(amount="0", wallet=WalletFactory(owner=other_user))
    caplog.set_level(logging.INFO, logger="wallet.audit")
    caplog.clear()

    batch = batch_create(
        movements=[
            {
                "type": "transfer",
                "from_wallet_balance_id": source.pk,
                "to_wallet_balance_id": destination.pk,
                "amount": Decimal("1.00"),
            },
            {"type": "withdraw", "wallet_balance_id": source.pk, "amount": Decimal("2.00")},
        ],
        owner=user,
        created_by=user,
    )

    (record,) = _audit_records(caplog)
    out, withdrawal = batch.entries
    assert record.posting == str(batch.id)
    assert [(leg["type"], leg["reference"]) for leg in record.entries] == [
        ("TRANSFER_OUT", str(out.reference)),
        ("TRANSFER_IN", str(out.reference)),
        ("WITHDRAWAL", str(withdrawal.reference)),
    ]


@pytest.mark.django_db
def test_a_single_movements_audit_line_names_its_reference_once(user, caplog):
    source = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    caplog.set_level(logging.INFO, logger="wallet.audit")
    caplog.clear()

    entry = withdrawal_create(wallet_balance_id=source.pk, amount=Decimal("1.00"), owner=user, created_by=user)

    (record,) = _audit_records(caplog)
    assert record.reference == record.posting == str(entry.reference)
    assert "reference" not in record.entries[0]
