"""Step-up: a large movement asked through the API needs a recent second factor.

With `MFA_STEP_UP_AMOUNT` set, a movement that takes more than that amount
(in `MFA_STEP_UP_CURRENCY`, converted at the current rate) out of its owner's
hands — a withdrawal, a payment, a hold, a transfer to another user's
balance (`transactions.posting.planning.outflows`) — needs an access token
whose second factor (its `mfa_at` claim) is at most `MFA_STEP_UP_MAX_AGE`
seconds old. Otherwise it is refused with 403 `mfa_required`, before any
lock is taken and with nothing written: `details.reason` is `not_enrolled`
(the user has no authenticator app) or `stale` (log in again with a code).
Deposits and transfers between one's own balances take nothing out of
one's hands, and are never asked. Staff actions in the admin are not API
movements: the admin's own second step covers them.

The check is a `planning.Guard` that the API's movement views put in front of
their postings (`planning.guarded_by`), so it runs after the plan (a 400 or
404 comes first) on the balances as the plan saw them, and its refusal is a
plan's refusal: decided by a fresh read, never by the known facts alone.

What it costs: nothing when step-up is off (no guard), nothing for a token
whose factor is fresh (the time is in the token), nothing for an amount in
the step-up currency. An amount in another currency reads the current rate
once per request, before the locks; whether the user has an app is read
only to word a refusal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings

from accounts.tokens import MFA_AT_CLAIM
from mfa.selectors import mfa_enrolled
from wallet_project.errors import MfaRequired
from wallet_project.money import convert
from wallets.selectors import current_rates

if TYPE_CHECKING:
    from accounts.models import User
    from transactions.posting.planning import Outflow

NOT_ENROLLED = "not_enrolled"
STALE = "stale"


@dataclass
class StepUp:
    """The step-up check of one API request (a `planning.Guard`): its caller, and when their token's second
    factor was given (None: the token carries none). Rates it reads are kept for the request."""

    user_id: UUID
    factor_at: int | None
    threshold: Decimal
    currency: str
    max_age: int
    _rates: dict[str, Decimal | None] = field(default_factory=dict)

    def __call__(self, outflows: Sequence[Outflow]) -> None:
        if not outflows or self.fresh():
            return
        worth = self.worth(outflows)
        if worth is not None and worth <= self.threshold:
            return
        raise self.refusal()

    def fresh(self, now: float | None = None) -> bool:
        """Whether the token's second factor is at most `max_age` seconds old."""
        now = time.time() if now is None else now
        return self.factor_at is not None and now - self.factor_at <= self.max_age

    def worth(self, outflows: Sequence[Outflow]) -> Decimal | None:
        """The outflows in the step-up currency, exactly; None when a currency has no current rate to it (then
        the movement is asked for a second factor: nothing tells it is small)."""
        total = Decimal(0)
        for outflow in outflows:
            if outflow.currency_id == self.currency:
                total += outflow.amount
                continue
            rate = self._rate(outflow.currency_id)
            if rate is None:
                return None
            total += convert(outflow.amount, rate)
        return total

    def refusal(self) -> MfaRequired:
        limit = f"{self.threshold} {self.currency}"
        details: dict[str, Any] = {
            "threshold": str(self.threshold),
            "currency": self.currency,
            "max_age_seconds": self.max_age,
        }
        if not mfa_enrolled(user_id=self.user_id):
            return MfaRequired(
                f"A movement worth more than {limit} needs two-factor authentication: add an authenticator app "
                "(POST /api/v1/auth/mfa/totp/), then log in with a code from it.",
                details={"reason": NOT_ENROLLED, **details},
            )
        return MfaRequired(
            f"A movement worth more than {limit} needs a second factor given in the last {self.max_age} seconds: "
            "log in again with a code from your authenticator app.",
            details={"reason": STALE, **details},
        )

    def _rate(self, currency: str) -> Decimal | None:
        if currency not in self._rates:
            self._rates[currency] = (
                current_rates(base=currency).filter(quote_id=self.currency).values_list("rate", flat=True).first()
            )
        return self._rates[currency]


def step_up_for(*, user: User, token: Any) -> StepUp | None:
    """The step-up check of an API caller's movement, with their validated access token (its claims, read with
    `get`); None when step-up is off."""
    threshold = settings.MFA_STEP_UP_AMOUNT
    if threshold is None:
        return None
    factor_at = token.get(MFA_AT_CLAIM) if token is not None else None
    return StepUp(
        user_id=user.pk,
        factor_at=factor_at if isinstance(factor_at, int) else None,
        threshold=threshold,
        currency=settings.MFA_STEP_UP_CURRENCY,
        max_age=settings.MFA_STEP_UP_MAX_AGE,
    )
