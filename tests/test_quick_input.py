"""The shortcut of `wallet_project.quick_input` answers exactly as the DRF serializers do, or leaves it to them."""

import itertools
import random
from decimal import Decimal

import pytest
from rest_framework.exceptions import ValidationError

from transactions.serializers import (
    BalanceMovementInputSerializer,
    PaymentInputSerializer,
    RefundInputSerializer,
    TransferInputSerializer,
)
from wallet_project.quick_input import validated

MISSING = object()
ID = "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22"
IDS = [
    ID,
    ID.upper(),
    "{" + ID + "}",
    "urn:uuid:" + ID,
    ID.replace("-", ""),
    " " + ID,
    ID[:-1],
    "",
    "not-a-uuid",
    123,
    None,
    True,
    [ID],
    MISSING,
]
AMOUNTS = [
    "12.50",
    "0.01",
    "1000000000000000",
    "1000000000000000.01",
    "1e2",
    " 7 ",
    "0",
    "-1",
    "0.00001",
    "NaN",
    "Infinity",
    "",
    "abc",
    5,
    Decimal("2.5"),
    0,
    True,
    None,
    [1],
    MISSING,
]
TEXTS = ["", "  ", "Rent", "  padded  ", "x" * 255, "x" * 256, " " + "x" * 255, "a\x00b", "\ud800"]
TEXTS += [7, 1.5, None, {}, MISSING]
SERIALIZERS = {
    BalanceMovementInputSerializer: {"wallet_balance_id": IDS, "amount": AMOUNTS, "description": TEXTS},
    PaymentInputSerializer: {"wallet_balance_id": IDS, "amount": AMOUNTS, "description": TEXTS, "merchant": TEXTS},
    TransferInputSerializer: {
        "from_wallet_balance_id": IDS,
        "to_wallet_balance_id": IDS,
        "amount": AMOUNTS,
        "description": TEXTS,
    },
    RefundInputSerializer: {"amount": AMOUNTS, "description": TEXTS},
}


def _bodies(fields: dict, sample: int, seed: int) -> list[dict]:
    combos = list(itertools.product(*fields.values()))
    chosen = random.Random(seed).sample(combos, min(sample, len(combos)))
    bodies = [
        {name: value for name, value in zip(fields, combo, strict=True) if value is not MISSING} for combo in chosen
    ]
    return [*bodies, *({**body, "unknown": "ignored"} for body in bodies[:50])]


@pytest.mark.parametrize("serializer_class", SERIALIZERS, ids=lambda cls: cls.__name__)
def test_the_shortcut_gives_what_drf_gives_or_leaves_it_to_drf(serializer_class):
    taken = 0
    # Most spellings here are refused (only a canonical UUID, a JSON string of text): a large sample still
    # holds enough plainly valid bodies, two ids and all, to show that the shortcut is taken.
    for body in _bodies(SERIALIZERS[serializer_class], sample=20000, seed=7):
        drf = serializer_class(data=body)
        drf_valid = drf.is_valid()
        quick = serializer_class.quick_validated(body)
        if quick is None:
            continue
        taken += 1
        assert drf_valid, (body, drf.errors)
        expected = dict(drf.validated_data)
        assert quick == expected, body
        # The same types and the same Decimal exponents (precision checks read them).
        assert {k: (type(v), repr(v)) for k, v in quick.items()} == {
            k: (type(v), repr(v)) for k, v in expected.items()
        }, body
    assert taken >= 50  # the shortcut is really taken on plainly valid bodies


@pytest.mark.parametrize("body", [[], "text", None, 5])
def test_a_body_that_is_not_an_object_goes_to_drf(body):
    assert TransferInputSerializer.quick_validated(body) is None
    with pytest.raises(Exception) as raised:
        validated(TransferInputSerializer, body)
    assert type(raised.value).__name__ == "ValidationError"


def test_validated_returns_drfs_answer_when_the_shortcut_declines():
    body = {"wallet_balance_id": ID, "amount": 5, "merchant": 42}  # a number is no merchant's name
    assert PaymentInputSerializer.quick_validated(body) is None
    with pytest.raises(ValidationError) as refused:
        validated(PaymentInputSerializer, body)
    assert refused.value.detail == {"merchant": ["Not a valid string."]}
