"""Reversal: the cashback a refund takes back, in the refund's own posting.

A refund of `r` out of a payment of `p` that earned `c` takes back, in all,
`round_down(c × refunded / p)` of the cashback, where `refunded` counts every
refund of that payment so far: partial refunds add up to exactly the whole
cashback when the payment is refunded in full. What this refund takes back is
that total less what earlier refunds took back (or could not):

* from a reward still **pending**, it is cut (nothing has moved yet; a reward
  cut to nothing is `reversed`);
* from a **booked** reward, it moves back: a LOYALTY_REVERSAL debit on the
  payer and a LOYALTY_RETURN credit on the funding balance that paid it,
  under the payment's reference, limited to what the payer had available when
  the refund was asked (before its credit: the refund is paid in full, and
  cashback already spent is not taken out of it); the rest is recorded on the
  reward as `unreversed_amount`, and no later refund asks for it again.

A refund of a payment with a pending or booked reward also locks the funding
balance (a reward still pending may be booked while the refund waits for its
locks): one more lock for refunds, which are staff's and rare, and none for
payments. The reward is read again under the locks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from loyalty.models import Reward, RewardStatus
from transactions.models import Transaction, TransactionType
from transactions.posting.hooks import OnPosted
from transactions.posting.movement import Leg, Reserve
from wallet_project.money import EXACT, round_down
from wallets.selectors import minor_unit_of

if TYPE_CHECKING:
    from transactions.posting.rows import BalanceRow

_ONGOING = (RewardStatus.PENDING, RewardStatus.BOOKED)


class RefundReversal:
    """What one refund of `payment` does to its reward: the balance it locks, the legs it adds, what it records.

    With no reward to reverse (none earned, or unfunded) it adds nothing.
    """

    def __init__(self, payment: Transaction, reward_id: UUID | None, funding_id: UUID | None) -> None:
        self.payment = payment
        self.reward_id = reward_id
        self.funding_id = funding_id
        self.changed: Reward | None = None

    @classmethod
    def of(cls, payment: Transaction) -> RefundReversal:
        """The reversal of `payment`'s reward, as it looks before the locks (read again under them)."""
        reward = (
            Reward.objects.filter(payment_id=payment.pk, status__in=_ONGOING)
            .select_related("program")
            .only("id", "funding_balance_id", "program__funding_balance_id")
            .first()
        )
        if reward is None:
            return cls(payment, None, None)
        return cls(payment, reward.pk, reward.funding_balance_id or reward.program.funding_balance_id)

    def lock_steps(self) -> list[Reserve]:
        """The funding balance, locked with the payer's (a step that reserves nothing)."""
        return [] if self.funding_id is None else [Reserve(self.funding_id, Decimal(0))]

    def legs(self, locked: Mapping[UUID, BalanceRow], refunded: Decimal) -> list[Leg]:
        """Under the locks, for a refund of `refunded`: the reward's new state, and the legs that move it back."""
        if self.reward_id is None:
            return []
        reward = Reward.objects.get(pk=self.reward_id)
        if reward.status not in _ONGOING:
            return []  # unfunded meanwhile: nothing was earned
        payment = self.payment
        reward.refunded_amount = min(payment.amount, reward.refunded_amount + refunded)
        due_in_all = round_down(
            EXACT.divide(EXACT.multiply(reward.amount, reward.refunded_amount), payment.amount),
            minor_unit_of(payment.currency_id),
        )
        due = max(Decimal(0), due_in_all - reward.reversed_amount - reward.unreversed_amount)
        self.changed = reward
        if reward.status == RewardStatus.PENDING:
            reward.reversed_amount += due
            if reward.reversed_amount >= reward.amount:
                reward.status = RewardStatus.REVERSED
            return []
        payer = locked[payment.wallet_balance_id]
        funding = locked.get(reward.funding_balance_id) if reward.funding_balance_id else None
        # A frozen funding wallet takes nothing back; a funding balance not locked (changed since the look
        # before the locks) neither: what is due is recorded, never refused.
        taken = Decimal(0) if funding is None or funding.is_frozen else min(due, max(payer.available, Decimal(0)))
        reward.reversed_amount += taken
        reward.unreversed_amount += due - taken
        if taken <= 0:
            return []
        return [
            Leg(payer.pk, TransactionType.LOYALTY_REVERSAL, taken, checks=()),
            Leg(funding.pk, TransactionType.LOYALTY_RETURN, taken, checks=()),  # type: ignore[union-attr]
        ]

    def on_posted(self, then: OnPosted | None) -> OnPosted | None:
        """The refund's hook: the reward's new state written in the refund's transaction, then `then`."""
        if self.reward_id is None:
            return then

        def posted(entries: Sequence[Transaction]) -> None:
            if self.changed is not None:
                self.changed.save(update_fields=["status", "refunded_amount", "reversed_amount", "unreversed_amount"])
            if then is not None:
                then(entries)

        return posted
