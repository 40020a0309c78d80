"""The hand-written rendering of a ledger entry equals DRF's generic one, for every kind of entry."""

from decimal import Decimal

import pytest

from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.serializers import TransactionOutputSerializer
from transactions.services import payment_create, refund_create, transfer_create, withdrawal_create


@pytest.mark.django_db
def test_every_kind_of_entry_renders_as_drf_would(user, other_user, staff_user):
    usd = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    jpy = funded_balance(currency="JPY", amount="0", wallet=WalletFactory(owner=other_user))
    kwd = funded_balance(currency="KWD", amount="1.250", wallet=WalletFactory(owner=other_user))
    common = {"owner": user, "created_by": user}
    withdrawal_create(wallet_balance_id=usd.pk, amount=Decimal("1.5"), description="cash", **common)
    payment = payment_create(wallet_balance_id=usd.pk, amount=Decimal("10"), merchant="Café", **common)
    refund_create(payment_id=payment.pk, amount=Decimal("2.25"), created_by=staff_user)
    transfer_create(from_wallet_balance_id=usd.pk, to_wallet_balance_id=jpy.pk, amount=Decimal("3.33"), **common)
    transfer_create(
        from_wallet_balance_id=kwd.pk, to_wallet_balance_id=usd.pk, amount=Decimal("0.125"), owner=None, created_by=None
    )

    entries = list(Transaction.objects.all())
    assert {entry.type for entry in entries} == {
        "DEPOSIT",
        "WITHDRAWAL",
        "PAYMENT",
        "REFUND",
        "TRANSFER_OUT",
        "TRANSFER_IN",
    }
    serializer = TransactionOutputSerializer()
    for entry in entries:
        assert serializer.to_representation(entry) == serializer.generic_representation(entry)
