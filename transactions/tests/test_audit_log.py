"""One audit line per money movement, written after the commit, listing every entry it wrote."""

import logging
from decimal import Decimal

import pytest

from tests.factories import WalletFactory, funded_balance
from transactions.services import transfer_create, withdrawal_create
from wallet_project.errors import InsufficientFunds


def _audit_records(caplog):
    return [record for record in caplog.records if record.name == "wallet.audit"]


@pytest.mark.django_db
def test_a_transfer_writes_one_audit_line_with_both_legs_after_commit(
    user, other_user, caplog, django_capture_on_commit_callbacks
):
    source = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    destination = funded_balance(currency="JPY", amount="0", wallet=WalletFactory(owner=other_user))
    caplog.set_level(logging.INFO, logger="wallet.audit")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        entry = transfer_create(
            from_wallet_balance_id=source.pk,
            to_wallet_balance_id=destination.pk,
            amount=Decimal("2.50"),
            owner=user,
            created_by=user,
        )
        assert _audit_records(caplog) == []  # nothing is said before the commit

    assert len(callbacks) == 1
    (record,) = _audit_records(caplog)
    assert record.reference == str(entry.reference)
    assert record.created_by == str(user.pk)
    assert [(leg["type"], leg["amount"], leg["currency"]) for leg in record.entries] == [
        ("TRANSFER_OUT", "2.50", "USD"),
        ("TRANSFER_IN", "396", "JPY"),
    ]


@pytest.mark.django_db
def test_a_refused_movement_writes_no_audit_line(user, caplog, django_capture_on_commit_callbacks):
    balance = funded_balance(amount="1.00", wallet=WalletFactory(owner=user))
    caplog.set_level(logging.INFO, logger="wallet.audit")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InsufficientFunds):
        withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("5"), owner=user, created_by=user)

    assert _audit_records(caplog) == []
