"""Writes of the loyalty app besides the money: the programmes, as Finance manages them.

The money of cashback moves only through the posting engine: earned in the
payment's posting (`earning`), booked by the worker (`booking`), taken back
in a refund's posting (`reversal`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from loyalty.models import LoyaltyProgram

if TYPE_CHECKING:
    from accounts.models import User

audit_logger = logging.getLogger("wallet.audit")


def program_save(*, program: LoyaltyProgram, by: User | None) -> LoyaltyProgram:
    """Create or change a programme after its full validation; raises ValidationError (another programme active in
    the currency, a funding balance in another currency or not an operator's, a cap with too many digits).

    What it earns from now on changes; rewards already earned keep their amounts.
    """
    program.full_clean()
    try:
        with transaction.atomic():
            program.save()
    except IntegrityError as exc:  # another one was activated between the check and the save
        raise ValidationError(
            {"is_active": "Another programme is already active in this currency: deactivate it first."}
        ) from exc
    audit_logger.info(
        "loyalty programme saved",
        extra={
            "program_id": str(program.pk),
            "currency": program.currency_id,
            "earn_rate": program.earn_rate,
            "is_active": program.is_active,
            "funding_balance_id": str(program.funding_balance_id),
            "by": None if by is None else str(by.pk),
        },
    )
    return program
