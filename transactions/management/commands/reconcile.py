"""`manage.py reconcile`: prove the ledger invariants of DESIGN.md over the whole ledger.

Two streaming passes, in one REPEATABLE READ snapshot (so a live service can be
reconciled without false alarms from movements booked meanwhile), with
server-side cursors, so memory stays constant on a ledger of millions of rows:

1. Balances ordered by id, merged with the ledger ordered by
   (wallet_balance_id, sequence) — the order of the unique index, so PostgreSQL
   reads it without sorting. For each balance: sequences 1..n without gaps,
   `balance_after[k] == balance_after[k-1] ± amount[k]`, the entries agree
   with the balance on wallet, owner and currency, the balance equals
   Σ credits − Σ debits and the last `balance_after`, and `last_sequence == n`.
2. The ledger ordered by (reference, type), one movement at a time: a transfer
   has exactly one TRANSFER_OUT and one TRANSFER_IN pointing at each other,
   with one recorded rate, and the credit is the debit times that rate rounded
   down to the credit currency's minor unit (equal amounts, one currency, when
   the rate is null); a payment's refunds are on its balance and sum to at most
   the payment; a hold's captures share one reference on one balance, and
   their refunds sum to at most what was captured; a deposit or withdrawal is
   alone under its reference. A payment's cashback shares its reference: each
   LOYALTY credit (on the paid balance) has a LOYALTY_FUNDING debit of the same
   amount, each LOYALTY_REVERSAL debit (on the paid balance) a LOYALTY_RETURN
   credit of the same amount, and no more is reversed than was credited.
   The same pass adds up every entry per currency: the money of all balances
   together (pass 1) changes only by deposits and withdrawals (adjustments
   included), payments, captures, refunds and currency conversions; what moves
   money between balances (transfers within a currency, cashback and its
   reversal) sums to zero (`_check_conservation`).

Plus cheap checks in SQL: one balance per (wallet, currency) and no negative
balance; the ledger's and the holds' PostgreSQL guards (triggers) are in place
and enabled; and the holds (`_check_holds`): each balance's `held_amount` is
the remainders of its active holds and is within its amount, its
`hold_due_at` is no later than their earliest expiry, each hold's
`captured_amount` is its CAPTURE entries, on its own balance, and every
CAPTURE entry belongs to a hold; and the rewards (`_check_rewards`): what
each payment's booked rewards say moved is its LOYALTY entries, what they say
moved back is its LOYALTY_REVERSAL entries, each funding-side entry is on the
funding balance of a booked reward of its payment, and each reward belongs to
a PAYMENT or CAPTURE entry on its own balance, under its reference.

The summary goes to stdout, progress to stderr. Any problem: the command names
each wrong balance or reference and exits non-zero (CommandError). Every run,
passed, failed or stopped by an error, leaves a `backoffice.ReconcileRun` row
(time, ok, summary) that the back office's dashboard shows.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any, TextIO
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import User
from backoffice.services import reconcile_run_record
from loyalty.models import LoyaltyProgram, Reward, RewardStatus
from transactions.models import CREDIT_TYPES, Hold, HoldStatus, Transaction, TransactionType
from wallet_project.money import EXACT, round_down
from wallets.models import Currency, WalletBalance

LEDGER_TRIGGERS = ("transactions_ledger_immutable", "transactions_ledger_chain")
# The chain's tip (each balance's newest entry carries its amount) and what keeps an entry's balance and actor.
BALANCE_TRIGGERS = ("wallets_balance_chain_tip", "wallets_balance_chain_tip_new", "wallets_balance_keeps_ledger")
USER_TRIGGERS = ("accounts_user_keeps_ledger",)
# Money from or to outside the service (adjustments are deposits and withdrawals); transfers between two
# currencies convert it; everything else moves it between balances and sums to zero per currency.
EXTERNAL_TYPES = frozenset(
    {
        TransactionType.DEPOSIT,
        TransactionType.WITHDRAWAL,
        TransactionType.PAYMENT,
        TransactionType.CAPTURE,
        TransactionType.REFUND,
    }
)
# The payer's side and the funding balance's side of a payment's cashback, each pair of equal amounts.
LOYALTY_PAIRS = (
    (TransactionType.LOYALTY, TransactionType.LOYALTY_FUNDING),
    (TransactionType.LOYALTY_REVERSAL, TransactionType.LOYALTY_RETURN),
)
LOYALTY_TYPES = frozenset(kind for pair in LOYALTY_PAIRS for kind in pair)
HOLD_TRIGGERS = ("transactions_hold_guard",)
# Messages kept per balance or reference: one broken link tends to repeat down the chain.
MESSAGES_PER_SUBJECT = 3


@dataclass
class Problems:
    """What is wrong, by subject; only the first `limit` subjects are kept (memory stays bounded)."""

    limit: int
    listed: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    balances: int = 0
    references: int = 0
    other: int = 0

    def add(self, kind: str, subject: object, message: str) -> None:
        key = (kind, str(subject))
        messages = self.listed.get(key)
        if messages is None:
            if kind == "balance":
                self.balances += 1
            elif kind == "reference":
                self.references += 1
            else:
                self.other += 1
            if len(self.listed) >= self.limit:
                return
            messages = self.listed[key] = []
        if len(messages) < MESSAGES_PER_SUBJECT:
            messages.append(message)
        elif len(messages) == MESSAGES_PER_SUBJECT:
            messages.append("... (more of the same subject not listed)")

    @property
    def total(self) -> int:
        return self.balances + self.references + self.other


class Progress:
    """A line on stderr every `every` rows, with the rate so far."""

    def __init__(self, stream: TextIO, every: int, label: str) -> None:
        self.stream = stream
        self.every = max(every, 1)
        self.label = label
        self.started = time.monotonic()
        self.finished: float | None = None
        self.rows = 0

    def tick(self) -> None:
        self.rows += 1
        if self.rows % self.every == 0:
            self.stream.write(f"{self.label}: {self.rows:,} rows ({self.rate():,.0f} rows/s)\n")
            self.stream.flush()

    def finish(self) -> Progress:
        self.finished = time.monotonic()
        return self

    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def rate(self) -> float:
        return self.rows / max(self.seconds(), 1e-9)


@dataclass
class ReferenceGroup:
    """The running state of one reference in pass 2: aggregates, never the list of its entries."""

    reference: UUID
    entries: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    transfer_out: tuple[Any, ...] | None = None
    transfer_in: tuple[Any, ...] | None = None
    paid_balance: UUID | None = None  # the balance of its payment, or of its hold's captures
    paid: Decimal = Decimal(0)
    paid_elsewhere: int = 0  # captures of one hold on another balance than the first
    refunded: Decimal = Decimal(0)
    refunds_elsewhere: int = 0
    # A payment's cashback: the amounts of each loyalty type, and the balances of the payer's side.
    loyalty: dict[str, Counter[Decimal]] = field(default_factory=dict)
    loyalty_payer_balances: set[UUID] = field(default_factory=set)


@dataclass
class CurrencyTotals:
    """What pass 1 found in the balances and pass 2 in the entries, of one currency."""

    balances: Decimal = Decimal(0)
    external: Decimal = Decimal(0)  # deposits + refunds − withdrawals − payments − captures
    converted: Decimal = Decimal(0)  # transfers between two currencies: in − out
    between_balances: Decimal = Decimal(0)  # transfers within it, cashback and its reversal: credits − debits


class Command(BaseCommand):
    help = "Prove the ledger invariants over the whole ledger (streaming); exits non-zero naming what is wrong."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=5000, help="Rows fetched per round trip (5000).")
        parser.add_argument(
            "--progress-every", type=int, default=100_000, help="A progress line on stderr every N rows (100000)."
        )
        parser.add_argument(
            "--max-listed", type=int, default=1000, help="Wrong balances and references listed at most (1000)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started_at = timezone.now()
        try:
            summary, problems = self._reconcile(options)
        except Exception as exc:
            # The dashboard shows the last run: one that stopped half-way is a failed run, not a missing one.
            self._record(started_at, ok=False, summary=f"Reconcile stopped: {type(exc).__name__}: {exc}")
            raise
        self.stdout.write(summary)
        if not problems.total:
            self.stdout.write(self.style.SUCCESS("OK: every invariant holds."))
            self._record(started_at, ok=True, summary=summary)
            return

        for (kind, subject), messages in problems.listed.items():
            self.stdout.write(self.style.ERROR(f"{kind} {subject}: " + "; ".join(messages)))
        unlisted = problems.total - len(problems.listed)
        if unlisted > 0:
            self.stdout.write(f"... and {unlisted:,} more not listed (--max-listed).")
        named = ", ".join(f"{kind} {subject}" for kind, subject in list(problems.listed)[:20])
        failure = (
            f"Reconcile failed: {problems.balances:,} wrong balances, {problems.references:,} wrong references"
            + (f", {problems.other:,} other problems" if problems.other else "")
            + f": {named}"
            + (" ..." if problems.total > 20 else "")
        )
        self._record(started_at, ok=False, summary=f"{summary}\n{failure}", problem_count=problems.total)
        raise CommandError(failure)

    def _reconcile(self, options: dict[str, Any]) -> tuple[str, Problems]:
        """Both passes and the SQL checks in one snapshot: the summary line and what is wrong."""
        self.chunk_size: int = options["chunk_size"]
        self.progress_every: int = options["progress_every"]
        self.progress_stream: TextIO = getattr(self.stderr, "_out", self.stderr)
        problems = Problems(limit=max(options["max_listed"], 1))
        started = time.monotonic()

        # Outside a transaction (the normal case) take one snapshot for both passes;
        # inside one (tests), the caller's snapshot is used as it is.
        top_level = not connection.in_atomic_block
        with transaction.atomic():
            if top_level:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self.minor_units = dict(Currency.objects.values_list("code", "minor_unit"))
            self._check_guards(problems, Transaction._meta.db_table, LEDGER_TRIGGERS)
            self._check_guards(problems, WalletBalance._meta.db_table, BALANCE_TRIGGERS)
            self._check_guards(problems, User._meta.db_table, USER_TRIGGERS)
            self._check_guards(problems, Hold._meta.db_table, HOLD_TRIGGERS)
            self._check_balance_table(problems)
            self._check_holds(problems)
            self._check_rewards(problems)
            self.currencies: dict[str, CurrencyTotals] = defaultdict(CurrencyTotals)
            with localcontext(EXACT):
                balances, chain = self._check_chains(problems)
                movements, refs = self._check_references(problems)
                self._check_conservation(problems)

        seconds = time.monotonic() - started
        rows = chain.rows + refs.rows
        summary = (
            f"Reconciled {balances:,} balances and {chain.rows:,} ledger entries "
            f"({chain.rows / max(chain.seconds(), 1e-9):,.0f} rows/s), "
            f"{movements:,} movements by reference ({refs.rows / max(refs.seconds(), 1e-9):,.0f} rows/s); "
            f"{rows:,} rows read in {seconds:.1f} s."
        )
        return summary, problems

    def _record(self, started_at: datetime, *, ok: bool, summary: str, problem_count: int = 0) -> None:
        """Keep the outcome for the back office (after the read-only snapshot). A database that refuses the row (a
        read-only replica) costs a warning, never the run's own answer."""
        try:
            # Its own transaction (a savepoint in a caller's): a refused row leaves the caller's work usable.
            with transaction.atomic():
                reconcile_run_record(started_at=started_at, ok=ok, summary=summary, problem_count=problem_count)
        except DatabaseError as exc:
            self.stderr.write(f"The outcome was not recorded for the back office: {exc}")

    # --- SQL checks ----------------------------------------------------------------------

    def _check_guards(self, problems: Problems, table: str, triggers: tuple[str, ...]) -> None:
        """The table's triggers exist and are enabled (ALTER TABLE ... DISABLE TRIGGER would lift them)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgname = ANY(%s)",
                [table, list(triggers)],
            )
            found = dict(cursor.fetchall())
        for name in triggers:
            if name not in found:
                problems.add("guard", name, f"the trigger on {table} is missing")
            elif found[name] == "D":
                problems.add("guard", name, f"the trigger on {table} is disabled")

    def _check_balance_table(self, problems: Problems) -> None:
        """One balance per (wallet, currency), none negative: aggregates that return only the wrong rows."""
        table = WalletBalance._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT wallet_id, currency_id, count(*) FROM {table} "  # noqa: S608 - our own table name
                "GROUP BY wallet_id, currency_id HAVING count(*) > 1 LIMIT %s",
                [problems.limit],
            )
            for wallet_id, currency, count in cursor.fetchall():
                problems.add("wallet", wallet_id, f"{count} balances in {currency}; one per currency is allowed")
            cursor.execute(
                f"SELECT id, amount FROM {table} WHERE amount < 0 LIMIT %s",  # noqa: S608 - our own table name
                [problems.limit],
            )
            for balance_id, amount in cursor.fetchall():
                problems.add("balance", balance_id, f"negative amount {amount}")

    def _check_holds(self, problems: Problems) -> None:
        """What the balances reserve agrees with their holds, and what the holds captured with the ledger.

        Aggregates that return only the wrong rows, as `_check_balance_table` does.
        """
        balances, holds, entries = WalletBalance._meta.db_table, Hold._meta.db_table, Transaction._meta.db_table
        active, capture = HoldStatus.ACTIVE.value, TransactionType.CAPTURE.value
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT balance.id, balance.amount, balance.held_amount, balance.hold_due_at,"  # noqa: S608
                "        COALESCE(live.held, 0), live.due"
                f" FROM {balances} AS balance LEFT JOIN ("
                "     SELECT wallet_balance_id, sum(amount - captured_amount) AS held, min(expires_at) AS due"
                f"    FROM {holds} WHERE status = %s GROUP BY wallet_balance_id"
                " ) AS live ON live.wallet_balance_id = balance.id"
                " WHERE balance.held_amount <> COALESCE(live.held, 0) OR balance.held_amount < 0"
                "    OR balance.held_amount > balance.amount"
                "    OR (live.due IS NOT NULL AND (balance.hold_due_at IS NULL OR balance.hold_due_at > live.due))"
                " LIMIT %s",
                [active, problems.limit],
            )
            for balance_id, amount, held, due_at, remainders, earliest in cursor.fetchall():
                if held != remainders:
                    problems.add("balance", balance_id, f"held_amount {held} but its active holds reserve {remainders}")
                if not 0 <= held <= amount:
                    problems.add("balance", balance_id, f"held_amount {held} outside 0 to its amount {amount}")
                if earliest is not None and (due_at is None or due_at > earliest):
                    problems.add(
                        "balance", balance_id, f"hold_due_at {due_at} is later than its earliest expiry {earliest}"
                    )
            cursor.execute(
                "SELECT hold.id, hold.captured_amount, COALESCE(sum(entry.amount), 0),"  # noqa: S608
                "       count(entry.id) FILTER (WHERE entry.wallet_balance_id <> hold.wallet_balance_id)"
                f" FROM {holds} AS hold LEFT JOIN {entries} AS entry"
                "   ON entry.reference = hold.reference AND entry.type = %s"
                " GROUP BY hold.id"
                " HAVING hold.captured_amount <> COALESCE(sum(entry.amount), 0)"
                "    OR count(entry.id) FILTER (WHERE entry.wallet_balance_id <> hold.wallet_balance_id) > 0"
                " LIMIT %s",
                [capture, problems.limit],
            )
            for hold_id, captured, booked, elsewhere in cursor.fetchall():
                if captured != booked:
                    problems.add("hold", hold_id, f"captured_amount {captured} but its CAPTURE entries sum to {booked}")
                if elsewhere:
                    problems.add("hold", hold_id, f"{elsewhere} CAPTURE entries on another balance than the hold's")
            cursor.execute(
                f"SELECT DISTINCT entry.reference FROM {entries} AS entry WHERE entry.type = %s"  # noqa: S608
                f" AND NOT EXISTS (SELECT 1 FROM {holds} AS hold WHERE hold.reference = entry.reference) LIMIT %s",
                [capture, problems.limit],
            )
            for (reference,) in cursor.fetchall():
                problems.add("reference", reference, "CAPTURE entries of no hold")

    # --- pass 1: every balance against its chain -----------------------------------------

    def _check_chains(self, problems: Problems) -> tuple[int, Progress]:
        balances = (
            WalletBalance.objects.order_by("pk")
            .values_list("pk", "amount", "last_sequence", "wallet_id", "wallet__owner_id", "currency_id")
            .iterator(chunk_size=self.chunk_size)
        )
        entries: Iterator[tuple[Any, ...]] = (
            Transaction.objects.order_by("wallet_balance_id", "sequence")
            .values_list(
                "wallet_balance_id",
                "sequence",
                "type",
                "amount",
                "balance_after",
                "wallet_id",
                "owner_id",
                "currency_id",
            )
            .iterator(chunk_size=self.chunk_size)
        )
        progress = Progress(self.progress_stream, self.progress_every, "reconcile balances")
        credit_types = {str(kind) for kind in CREDIT_TYPES}
        entry = next(entries, None)
        balance_count = 0
        for balance_id, amount, last_sequence, wallet_id, owner_id, currency in balances:
            balance_count += 1
            self.currencies[currency].balances += amount
            # Both sides are ordered by the uuid's bytes, as Python orders UUIDs.
            while entry is not None and entry[0] < balance_id:
                problems.add("balance", entry[0], "ledger entries of a balance that does not exist")
                progress.tick()
                entry = next(entries, None)
            count = 0
            total = Decimal(0)
            previous_after = Decimal(0)
            while entry is not None and entry[0] == balance_id:
                _, sequence, kind, entry_amount, balance_after, entry_wallet, entry_owner, entry_currency = entry
                count += 1
                if sequence != count:
                    problems.add("balance", balance_id, f"chain broken: sequence {sequence} where {count} was due")
                    count = sequence
                if entry_amount <= 0:
                    problems.add("balance", balance_id, f"entry {sequence} has a non-positive amount {entry_amount}")
                is_credit = kind in credit_types
                expected_after = previous_after + entry_amount if is_credit else previous_after - entry_amount
                if balance_after != expected_after:
                    problems.add(
                        "balance",
                        balance_id,
                        f"chain broken at sequence {sequence}: balance_after {balance_after}, "
                        f"expected {expected_after} ({kind} {entry_amount} after {previous_after})",
                    )
                if balance_after < 0:
                    problems.add("balance", balance_id, f"negative balance_after {balance_after} at {sequence}")
                if (entry_wallet, entry_owner, entry_currency) != (wallet_id, owner_id, currency):
                    problems.add(
                        "balance", balance_id, f"entry {sequence} disagrees with its balance on wallet/owner/currency"
                    )
                total = total + entry_amount if is_credit else total - entry_amount
                # Follow the recorded chain, so that one bad link is reported once, not down the chain.
                previous_after = balance_after
                progress.tick()
                entry = next(entries, None)
            if amount != total:
                problems.add(
                    "balance", balance_id, f"amount {amount} but its entries sum to {total} (credits − debits)"
                )
            if amount != previous_after:
                problems.add("balance", balance_id, f"amount {amount} but the last balance_after is {previous_after}")
            if last_sequence != count:
                problems.add("balance", balance_id, f"last_sequence {last_sequence} but the last entry is {count}")
        while entry is not None:
            problems.add("balance", entry[0], "ledger entries of a balance that does not exist")
            progress.tick()
            entry = next(entries, None)
        return balance_count, progress.finish()

    # --- pass 2: every movement by its reference -----------------------------------------

    def _check_references(self, problems: Problems) -> tuple[int, Progress]:
        # CAPTURE and PAYMENT sort before REFUND, so a group meets what was paid before its refunds.
        entries = (
            Transaction.objects.order_by("reference", "type", "sequence")
            .values_list(
                "reference",
                "type",
                "wallet_balance_id",
                "related_wallet_balance_id",
                "amount",
                "exchange_rate",
                "currency_id",
            )
            .iterator(chunk_size=self.chunk_size)
        )
        progress = Progress(self.progress_stream, self.progress_every, "reconcile references")
        group: ReferenceGroup | None = None
        movements = 0
        credit_types = {str(kind) for kind in CREDIT_TYPES}
        for row in entries:
            reference, kind, balance_id, _, amount, rate, currency = row
            self._count_money(kind, amount, rate, currency, credit_types)
            if group is None or group.reference != reference:
                if group is not None:
                    self._close_group(group, problems)
                group = ReferenceGroup(reference)
                movements += 1
            group.entries += 1
            group.counts[kind] = group.counts.get(kind, 0) + 1
            if kind == TransactionType.TRANSFER_OUT and group.transfer_out is None:
                group.transfer_out = row
            elif kind == TransactionType.TRANSFER_IN and group.transfer_in is None:
                group.transfer_in = row
            elif kind in (TransactionType.PAYMENT, TransactionType.CAPTURE):
                group.paid += amount
                if group.paid_balance is None:
                    group.paid_balance = balance_id
                elif balance_id != group.paid_balance:
                    group.paid_elsewhere += 1
            elif kind == TransactionType.REFUND:
                group.refunded += amount
                if group.paid_balance is not None and balance_id != group.paid_balance:
                    group.refunds_elsewhere += 1
            elif kind in LOYALTY_TYPES:
                group.loyalty.setdefault(kind, Counter())[amount] += 1
                if kind in (TransactionType.LOYALTY, TransactionType.LOYALTY_REVERSAL):
                    group.loyalty_payer_balances.add(balance_id)
            progress.tick()
        if group is not None:
            self._close_group(group, problems)
        return movements, progress.finish()

    def _close_group(self, group: ReferenceGroup, problems: Problems) -> None:
        counts = group.counts
        reference = group.reference
        transfer_legs = counts.get(TransactionType.TRANSFER_OUT, 0) + counts.get(TransactionType.TRANSFER_IN, 0)
        if transfer_legs:
            if counts.get(TransactionType.TRANSFER_OUT, 0) != 1 or counts.get(TransactionType.TRANSFER_IN, 0) != 1:
                problems.add(
                    "reference",
                    reference,
                    f"transfer with {counts.get(TransactionType.TRANSFER_OUT, 0)} TRANSFER_OUT and "
                    f"{counts.get(TransactionType.TRANSFER_IN, 0)} TRANSFER_IN legs; exactly one of each is due",
                )
            if group.entries != transfer_legs:
                problems.add("reference", reference, f"transfer shares its reference with other entries: {counts}")
            if group.transfer_out is not None and group.transfer_in is not None:
                self._check_transfer(reference, group.transfer_out, group.transfer_in, problems)
            return
        payments = counts.get(TransactionType.PAYMENT, 0)
        captures = counts.get(TransactionType.CAPTURE, 0)
        refunds = counts.get(TransactionType.REFUND, 0)
        cashback = sum(counts.get(kind, 0) for kind in LOYALTY_TYPES)
        if cashback and not (payments or captures):
            problems.add("reference", reference, f"cashback entries of no payment or capture: {counts}")
            return
        if payments or captures or refunds:
            if not (payments == 1 and not captures) and not (captures and not payments):
                problems.add(
                    "reference",
                    reference,
                    f"{payments} payments, {captures} captures and {refunds} refunds; "
                    "one payment, or a hold's captures, is due",
                )
            if group.entries != payments + captures + refunds + cashback:
                problems.add("reference", reference, f"payment shares its reference with other entries: {counts}")
            if cashback:
                self._check_cashback(group, problems)
            if group.paid_elsewhere:
                problems.add("reference", reference, f"{group.paid_elsewhere} captures of one hold on another balance")
            if group.paid_balance is not None:
                if group.refunded > group.paid:
                    problems.add(
                        "reference", reference, f"refunds sum to {group.refunded}, more than was paid ({group.paid})"
                    )
                if group.refunds_elsewhere:
                    problems.add(
                        "reference", reference, f"{group.refunds_elsewhere} refunds on another balance than the payment"
                    )
            return
        if group.entries != 1:
            problems.add("reference", reference, f"{group.entries} entries under one reference: {counts}")

    def _check_cashback(self, group: ReferenceGroup, problems: Problems) -> None:
        """A payment's cashback: each payer-side entry paired with a funding-side one of the same amount, on the
        paid balance, and no more reversed than credited."""
        empty: Counter[Decimal] = Counter()
        for payer_side, funding_side in LOYALTY_PAIRS:
            paid, funded = group.loyalty.get(payer_side, empty), group.loyalty.get(funding_side, empty)
            if paid != funded:
                problems.add(
                    "reference",
                    group.reference,
                    f"{payer_side} amounts {sorted(paid.elements())} are not matched by {funding_side} amounts "
                    f"{sorted(funded.elements())}",
                )
        elsewhere = group.loyalty_payer_balances - {group.paid_balance}
        if elsewhere:
            problems.add("reference", group.reference, f"cashback on {len(elsewhere)} balance(s) that did not pay")
        credited = sum(group.loyalty.get(TransactionType.LOYALTY, empty).elements(), Decimal(0))
        reversed_ = sum(group.loyalty.get(TransactionType.LOYALTY_REVERSAL, empty).elements(), Decimal(0))
        if reversed_ > credited:
            problems.add("reference", group.reference, f"cashback reversed {reversed_}, more than credited {credited}")

    def _count_money(self, kind: str, amount: Decimal, rate: Decimal | None, currency: str, credits: set[str]) -> None:
        """Add one entry to its currency's totals, by where its money comes from or goes (`CurrencyTotals`)."""
        signed = amount if kind in credits else -amount
        totals = self.currencies[currency]
        if kind in EXTERNAL_TYPES:
            totals.external += signed
        elif kind in (TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN) and rate is not None:
            totals.converted += signed
        else:
            totals.between_balances += signed

    def _check_conservation(self, problems: Problems) -> None:
        """Per currency: the balances together hold what came in less what went out and what conversions moved, and
        what moves between balances (transfers within the currency, cashback) sums to zero: money is moved, never
        created."""
        for currency, totals in sorted(self.currencies.items()):
            if totals.between_balances != 0:
                problems.add(
                    "currency",
                    currency,
                    f"movements between balances sum to {totals.between_balances}, not zero: money was created or lost",
                )
            expected = totals.external + totals.converted + totals.between_balances
            if totals.balances != expected:
                problems.add(
                    "currency",
                    currency,
                    f"the balances hold {totals.balances}; deposits, withdrawals, payments, captures, refunds and "
                    f"conversions give {expected}",
                )

    def _check_rewards(self, problems: Problems) -> None:
        """The rewards against the ledger, as aggregates that return only the wrong rows (`_check_holds`)."""
        rewards, entries, programs = Reward._meta.db_table, Transaction._meta.db_table, LoyaltyProgram._meta.db_table
        booked = RewardStatus.BOOKED.value
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH rewarded AS ("  # noqa: S608 - our own table names
                "   SELECT reference, sum(booked_amount) AS booked,"
                "          sum(CASE WHEN status = %s THEN reversed_amount - amount + booked_amount ELSE 0 END)"
                "              AS moved_back"
                f"  FROM {rewards} GROUP BY reference),"
                " booked_entries AS ("
                "   SELECT reference, sum(amount) FILTER (WHERE type = %s) AS credited,"
                "          sum(amount) FILTER (WHERE type = %s) AS taken"
                f"  FROM {entries} WHERE type IN (%s, %s) GROUP BY reference)"
                " SELECT COALESCE(r.reference, e.reference), COALESCE(r.booked, 0), COALESCE(e.credited, 0),"
                "        COALESCE(r.moved_back, 0), COALESCE(e.taken, 0)"
                " FROM rewarded AS r FULL JOIN booked_entries AS e ON e.reference = r.reference"
                " WHERE COALESCE(r.booked, 0) <> COALESCE(e.credited, 0)"
                "    OR COALESCE(r.moved_back, 0) <> COALESCE(e.taken, 0)"
                " LIMIT %s",
                [
                    booked,
                    TransactionType.LOYALTY.value,
                    TransactionType.LOYALTY_REVERSAL.value,
                    TransactionType.LOYALTY.value,
                    TransactionType.LOYALTY_REVERSAL.value,
                    problems.limit,
                ],
            )
            for reference, booked_amount, credited, moved_back, taken in cursor.fetchall():
                if booked_amount != credited:
                    problems.add(
                        "reference", reference, f"rewards booked {booked_amount} but its LOYALTY entries are {credited}"
                    )
                if moved_back != taken:
                    problems.add(
                        "reference",
                        reference,
                        f"rewards say {moved_back} was moved back but its LOYALTY_REVERSAL entries are {taken}",
                    )
            cursor.execute(
                f"SELECT DISTINCT entry.reference FROM {entries} AS entry"  # noqa: S608 - our own table names
                " WHERE entry.type IN (%s, %s) AND NOT EXISTS ("
                f"   SELECT 1 FROM {rewards} AS reward WHERE reward.reference = entry.reference"
                "    AND reward.status = %s AND reward.funding_balance_id = entry.wallet_balance_id)"
                " LIMIT %s",
                [
                    TransactionType.LOYALTY_FUNDING.value,
                    TransactionType.LOYALTY_RETURN.value,
                    booked,
                    problems.limit,
                ],
            )
            for (reference,) in cursor.fetchall():
                problems.add("reference", reference, "cashback funding entries on no booked reward's funding balance")
            cursor.execute(
                f"SELECT reward.id FROM {rewards} AS reward"  # noqa: S608 - our own table names
                f" LEFT JOIN {entries} AS payment ON payment.id = reward.payment_id"
                f" LEFT JOIN {programs} AS program ON program.id = reward.program_id"
                " WHERE program.id IS NULL OR payment.id IS NULL OR payment.type NOT IN (%s, %s)"
                "    OR payment.reference <> reward.reference OR payment.wallet_balance_id <> reward.wallet_balance_id"
                "    OR payment.owner_id <> reward.owner_id OR payment.currency_id <> reward.currency_id"
                " LIMIT %s",
                [TransactionType.PAYMENT.value, TransactionType.CAPTURE.value, problems.limit],
            )
            for (reward_id,) in cursor.fetchall():
                problems.add(
                    "reward", reward_id, "does not match the PAYMENT or CAPTURE entry that earned it, or its programme"
                )

    def _check_transfer(
        self, reference: UUID, debit: tuple[Any, ...], credit: tuple[Any, ...], problems: Problems
    ) -> None:
        _, _, from_id, from_related, debit_amount, debit_rate, from_currency = debit
        _, _, to_id, to_related, credit_amount, credit_rate, to_currency = credit
        if from_related != to_id or to_related != from_id:
            problems.add(
                "reference",
                reference,
                f"legs do not point at each other (out {from_id} → {from_related}, in {to_id} → {to_related})",
            )
        if from_id == to_id:
            problems.add("reference", reference, f"transfer from balance {from_id} to itself")
        if debit_rate != credit_rate:
            problems.add("reference", reference, f"legs record different rates ({debit_rate} and {credit_rate})")
            return
        if debit_rate is None:
            if from_currency != to_currency:
                problems.add("reference", reference, f"{from_currency} → {to_currency} with no exchange rate")
            elif credit_amount != debit_amount:
                problems.add("reference", reference, f"credit {credit_amount} differs from debit {debit_amount}")
            return
        if from_currency == to_currency:
            problems.add("reference", reference, f"an exchange rate {debit_rate} within one currency {to_currency}")
        minor_unit = self.minor_units.get(to_currency)
        if minor_unit is None:
            problems.add("reference", reference, f"unknown credit currency {to_currency}")
            return
        expected = round_down(debit_amount * debit_rate, minor_unit)
        if credit_amount != expected:
            problems.add(
                "reference",
                reference,
                f"credit {credit_amount} {to_currency}, but {debit_amount} {from_currency} × {debit_rate} "
                f"rounded down is {expected}",
            )
