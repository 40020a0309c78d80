"""`manage.py seed_demo`: demo users, wallets and a history of movements, booked through the one road for money.

Idempotent: users, wallets and balances are created only when missing, and every
seeded movement carries its number in its description (`Seed #00000042: ...`),
so a second run finds the highest number already booked and adds only what is
missing. Movement `k` draws from `random.Random(f"{seed}:movement:{k}")`, so a
history is the same on every fresh database and an interrupted run resumes
where it stopped. `--users N --movements M` grows the data set (extra users
`user0001@example.com`...) for load tests.

Movements are booked in batches (`transactions.batches`): up to `BATCH_SIZE`
of them in one posting, each balance locked once, so a large history costs a
fraction of what one request per movement does; the opening deposits of the
balances a run creates are batches too. A refund is booked on its own, after
the batch before it (it refunds a payment already booked). Amounts are chosen
within what the balance holds, so refusals are rare; a batch refused as a whole
(a wallet frozen in the back office, a lock timeout) is booked again one
movement at a time, and each refusal is counted, never fatal. Only an
unreachable Redis or database stops the command.

A loyalty programme comes with it: 1 % cashback on USD payments (at most 5.00
each), funded by a USD balance of an operator account (staff); the cashback
the seeded payments earn is booked at the end, as the worker would.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO
from uuid import UUID

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import User
from loyalty.booking import DEFAULT_BATCH, rewards_book
from loyalty.models import LoyaltyProgram
from loyalty.services import program_save
from transactions.batches.services import DEPOSIT, MAX_MOVEMENTS, PAYMENT, TRANSFER, WITHDRAW, batch_create
from transactions.models import Transaction, TransactionSource
from transactions.services import refund_create, transfer_credit
from wallet_project.errors import DomainError, ServiceUnavailable
from wallet_project.money import round_down
from wallets.models import Currency, ExchangeRate, Wallet, WalletBalance
from wallets.services import balance_create, wallet_create

DEMO_PASSWORD = "demo-pass-2026"
FINANCE_EMAIL = "finance@example.com"
FINANCE_GROUP = "Finance"
OPERATOR_EMAIL = "operator@example.com"
LOYALTY_PROGRAM = "Demo cashback"
LOYALTY_CURRENCY = "USD"
LOYALTY_FUNDING = Decimal("10000.00")
DESCRIPTION_PREFIX = "Seed #"
# Zero-padded, so that the highest number is also the greatest description.
INDEX_WIDTH = 8

# (email, name, [(wallet name, {currency: opening amount})])
DEMO_USERS: list[tuple[str, str, list[tuple[str, dict[str, str]]]]] = [
    (
        "alice@example.com",
        "Alice Anders",
        [
            ("Main", {"USD": "5000.00", "EUR": "2500.00", "GBP": "1200.00"}),
            ("Travel", {"JPY": "250000", "IDR": "15000000.00"}),
        ],
    ),
    (
        "bob@example.com",
        "Bob Brandt",
        [
            ("Main", {"EUR": "4000.00", "USD": "1500.00", "KWD": "800.000"}),
            ("Savings", {"GBP": "3000.00"}),
        ],
    ),
    (
        "carol@example.com",
        "Carol Castillo",
        [
            ("Main", {"JPY": "500000", "IDR": "25000000.00", "USD": "2000.00"}),
            ("Business", {"KWD": "1500.000", "EUR": "6000.00"}),
        ],
    ),
]
SEED_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "IDR", "KWD")
# Roughly one US dollar in each currency: movement sizes look plausible everywhere.
DOLLAR = {
    "USD": Decimal(1),
    "EUR": Decimal("0.9"),
    "GBP": Decimal("0.8"),
    "JPY": Decimal(150),
    "IDR": Decimal(15000),
    "KWD": Decimal("0.3"),
}
MERCHANTS = (
    "Blue Bottle Coffee",
    "Corner Grocery",
    "City Rail",
    "Bookshop on the Square",
    "Night Market",
    "Cloud Hosting Ltd",
    "Pharmacy Plus",
    "Museum Tickets",
)
MOVEMENT_KINDS = ("deposit", "withdrawal", "payment", "transfer", "refund")
MOVEMENT_WEIGHTS = (20, 10, 32, 30, 8)
# Payments kept in memory as refund candidates (memory stays bounded on large runs).
REFUNDABLE_WINDOW = 500
USER_BATCH = 1000
# Movements booked in one posting: each batch holds its balances' locks while it is written, and a demo
# account in use waits for it.
BATCH_SIZE = 100
OPENING = "Opening deposit"


@dataclass
class SeedBalance:
    id: UUID
    currency: str
    minor_unit: int
    amount: Decimal


@dataclass
class SeededBalances:
    """The balances the movements draw from, in a fixed order, and what this run created."""

    items: list[SeedBalance] = field(default_factory=list)
    created: int = 0
    wallets_created: int = 0


@dataclass
class RefundCandidate:
    payment_id: UUID
    balance_id: UUID
    left: Decimal


@dataclass
class Refund:
    """A refund drawn for the history: booked on its own, after the batch before it."""

    candidate: RefundCandidate
    amount: Decimal
    description: str


@dataclass
class Pending:
    """The movements drawn since the last batch was booked, and which of them are payments (refundable later)."""

    movements: list[dict[str, Any]] = field(default_factory=list)
    payments: list[int] = field(default_factory=list)  # positions in `movements`


def _one(kind: str, balance: SeedBalance, amount: Decimal, description: str, **fields: Any) -> dict[str, Any]:
    """A movement of one balance, as a batch takes it."""
    return {"type": kind, "wallet_balance_id": balance.id, "amount": amount, "description": description, **fields}


class ProgressBar:
    """A carriage-return bar on a terminal; on a pipe or a file, a line every tenth of the way."""

    width = 30

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        self.stream = stream
        self.total = max(total, 1)
        self.label = label
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_tenth = -1
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self.last_draw < 0.1 and done < self.total:
                return
            self.last_draw = now
            self.stream.write("\r" + self._line(done, now))
        else:
            tenth = done * 10 // self.total
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
            self.stream.write(self._line(done, now) + "\n")
        self.stream.flush()

    def finish(self, done: int) -> None:
        self.last_draw = 0.0
        self.update(done)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, done: int, now: float) -> str:
        filled = self.width * done // self.total
        elapsed = max(now - self.started, 1e-9)
        return (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done:,}/{self.total:,} {100 * done // self.total:3d}% {done / elapsed:,.0f}/s"
        )


class Command(BaseCommand):
    help = "Seed demo users, wallets and a deterministic history of movements (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=0, help="Extra users user0001@example.com... (default 0).")
        parser.add_argument("--movements", type=int, default=300, help="Movements in the seeded history (default 300).")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed of the history (default 2026).")

    def handle(self, *args: Any, **options: Any) -> None:
        users_wanted: int = options["users"]
        movements_wanted: int = options["movements"]
        seed: int = options["seed"]
        if users_wanted < 0 or movements_wanted < 0:
            raise CommandError("--users and --movements must not be negative.")
        if not options.get("verbosity", 1) > 1:
            # Every movement would write an audit line; the ledger itself records them (source SEED).
            logging.getLogger("wallet.audit").setLevel(logging.WARNING)

        self.progress_stream: TextIO = getattr(self.stderr, "_out", sys.stderr)
        self.currencies = {
            code: minor_unit
            for code, minor_unit in Currency.objects.filter(code__in=SEED_CURRENCIES).values_list("code", "minor_unit")
        }
        missing = sorted(set(SEED_CURRENCIES) - set(self.currencies))
        if missing:
            raise CommandError(f"Currencies missing from the database (run migrate): {', '.join(missing)}.")
        self.rates = {
            (base, quote): rate
            for base, quote, rate in ExchangeRate.objects.filter(valid_to__isnull=True).values_list(
                "base_id", "quote_id", "rate"
            )
        }

        started = time.monotonic()
        plan = self._plan(users_wanted, seed)
        users, users_created = self._ensure_users([(email, name) for email, name, _ in plan])
        finance_created = self._ensure_finance_user()
        programs_created = self._ensure_loyalty_program()
        balances = self._ensure_wallets_and_balances(plan, users)
        wallets_created = balances.wallets_created
        setup_seconds = time.monotonic() - started

        booked, refused, movement_seconds, first_index = self._book_movements(balances, movements_wanted, seed)
        cashback = self._book_cashback()

        if users_created or finance_created or wallets_created or balances.created or booked or refused or cashback:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded: {users_created + finance_created + programs_created} users, "
                    f"{wallets_created + programs_created} wallets, "
                    f"{balances.created + programs_created} balances in {setup_seconds:.1f} s; "
                    f"movements #{first_index}..#{movements_wanted - 1}: {booked} booked"
                    + (f", {sum(refused.values())} refused ({self._codes(refused)})" if refused else "")
                    + (
                        f" in {movement_seconds:.1f} s ({booked / movement_seconds:,.0f} movements/s)"
                        if booked and movement_seconds > 0
                        else ""
                    )
                    + (f"; {cashback} cashback rewards booked" if cashback else "")
                    + "."
                )
            )
        else:
            self.stdout.write("Already seeded: nothing to add.")
        self._print_logins(users_wanted)

    # --- users, wallets, balances ------------------------------------------------------

    def _plan(self, users_wanted: int, seed: int) -> list[tuple[str, str, list[tuple[str, dict[str, Decimal]]]]]:
        """Who gets which wallets and opening amounts; the same for a given seed on every run."""
        plan = [
            (
                email,
                name,
                [(wallet, {code: Decimal(amount) for code, amount in opening.items()}) for wallet, opening in wallets],
            )
            for email, name, wallets in DEMO_USERS
        ]
        for number in range(1, users_wanted + 1):
            rng = random.Random(f"{seed}:user:{number}")  # noqa: S311 - demo data, reproducible on purpose
            codes = rng.sample(SEED_CURRENCIES, rng.randint(1, 3))
            opening = {code: self._random_amount(rng, code, 200, 5000) for code in codes}
            plan.append((f"user{number:04d}@example.com", f"Demo User {number:04d}", [("Main", opening)]))
        return plan

    def _ensure_users(self, people: list[tuple[str, str]]) -> tuple[dict[str, User], int]:
        # One hash for all: PBKDF2 per user would make a thousand users take minutes.
        password_hash = make_password(DEMO_PASSWORD)
        users: dict[str, User] = {}
        created = 0
        for start in range(0, len(people), USER_BATCH):
            batch = people[start : start + USER_BATCH]
            existing = {user.email: user for user in User.objects.filter(email__in=[email for email, _ in batch])}
            new_users = [
                User(email=email, name=name, password=password_hash) for email, name in batch if email not in existing
            ]
            if new_users:
                User.objects.bulk_create(new_users, ignore_conflicts=True)
                created += len(new_users)
                existing = {user.email: user for user in User.objects.filter(email__in=[email for email, _ in batch])}
            users.update(existing)
        return users, created

    def _ensure_finance_user(self) -> int:
        finance = User.objects.filter(email=FINANCE_EMAIL).first()
        created = 0
        if finance is None:
            finance = User.objects.create_user(
                email=FINANCE_EMAIL, password=DEMO_PASSWORD, name="Finance Desk", is_staff=True
            )
            created = 1
        elif not finance.is_staff:
            finance.is_staff = True
            finance.save(update_fields=["is_staff"])
        group = Group.objects.filter(name=FINANCE_GROUP).first()
        if group is not None and not finance.groups.filter(pk=group.pk).exists():
            finance.groups.add(group)
        return created

    def _ensure_loyalty_program(self) -> int:
        """The demo programme and the operator account whose balance funds it; 1 when this run created them.

        The programme is left inactive if another is already active in its currency (one per currency).
        """
        if LoyaltyProgram.objects.filter(name=LOYALTY_PROGRAM).exists():
            return 0
        operator = User.objects.filter(email=OPERATOR_EMAIL).first()
        if operator is None:
            operator = User.objects.create_user(
                email=OPERATOR_EMAIL, password=DEMO_PASSWORD, name="Loyalty Operator", is_staff=True
            )
        wallet = Wallet.objects.filter(owner=operator, name="Loyalty funding").first()
        if wallet is None:
            wallet = wallet_create(owner=operator, name="Loyalty funding")
        funding = WalletBalance.objects.filter(wallet=wallet, currency_id=LOYALTY_CURRENCY).first()
        if funding is None:
            funding = balance_create(
                wallet_id=wallet.pk,
                owner=None,
                currency=LOYALTY_CURRENCY,
                initial_amount=LOYALTY_FUNDING,
                created_by=None,
                source=TransactionSource.SEED,
            )
        program = LoyaltyProgram(
            name=LOYALTY_PROGRAM,
            currency_id=LOYALTY_CURRENCY,
            earn_rate=100,
            max_per_payment=Decimal("5.00"),
            valid_from=timezone.now(),
            is_active=not LoyaltyProgram.objects.filter(currency_id=LOYALTY_CURRENCY, is_active=True).exists(),
            funding_balance=funding,
        )
        program_save(program=program, by=None)
        return 1

    def _book_cashback(self) -> int:
        """Book the cashback the seeded payments earned, as the worker (`book_loyalty`) would; how many rewards."""
        booked = 0
        while True:
            done = rewards_book(source=TransactionSource.SEED)
            booked += done.booked
            if done.pending < DEFAULT_BATCH or not (done.booked or done.unfunded or done.reversed):
                return booked

    def _ensure_wallets_and_balances(
        self, plan: list[tuple[str, str, list[tuple[str, dict[str, Decimal]]]]], users: dict[str, User]
    ) -> SeededBalances:
        balances = SeededBalances()
        wallets_created = 0
        total = sum(len(opening) for _, _, wallets in plan for _, opening in wallets)
        bar = ProgressBar(self.progress_stream, total, "balances ") if total > 100 else None
        done = 0
        for start in range(0, len(plan), USER_BATCH):
            batch = plan[start : start + USER_BATCH]
            owner_ids = [users[email].pk for email, _, _ in batch]
            wallets = {
                (wallet.owner_id, wallet.name): wallet for wallet in Wallet.objects.filter(owner_id__in=owner_ids)
            }
            existing = {
                (balance.wallet_id, balance.currency_id): balance
                for balance in WalletBalance.objects.filter(wallet__owner_id__in=owner_ids)
            }
            # Balances opened without their deposit: every planned amount is positive, so a planned balance with
            # no entry (new, or left by a run that stopped) still waits for it.
            openings: list[tuple[SeedBalance, Decimal]] = []
            for email, _, wallet_plan in batch:
                owner = users[email]
                for wallet_name, opening in wallet_plan:
                    wallet = wallets.get((owner.pk, wallet_name))
                    if wallet is None:
                        wallet = wallet_create(owner=owner, name=wallet_name)
                        wallets_created += 1
                    for code, amount in opening.items():
                        balance = existing.get((wallet.pk, code))
                        if balance is None:
                            balance = balance_create(
                                wallet_id=wallet.pk,
                                owner=None,
                                currency=code,
                                initial_amount=None,
                                created_by=None,
                                source=TransactionSource.SEED,
                            )
                            balances.created += 1
                        seeded = SeedBalance(balance.pk, code, self.currencies[code], balance.amount)
                        balances.items.append(seeded)
                        if balance.last_sequence == 0:
                            openings.append((seeded, amount))
                        done += 1
                        if bar is not None:
                            bar.update(done)
            self._book_openings(openings)
        if bar is not None:
            bar.finish(done)
        balances.wallets_created = wallets_created
        return balances

    def _book_openings(self, openings: list[tuple[SeedBalance, Decimal]]) -> None:
        """The opening deposits of new balances, in batches (DEPOSIT entries said `Opening deposit`)."""
        for start in range(0, len(openings), MAX_MOVEMENTS):
            some = openings[start : start + MAX_MOVEMENTS]
            try:
                batch_create(
                    movements=[
                        {"type": DEPOSIT, "wallet_balance_id": balance.id, "amount": amount} for balance, amount in some
                    ],
                    owner=None,
                    created_by=None,
                    source=TransactionSource.SEED,
                    description=OPENING,
                )
            except DomainError as exc:
                raise CommandError(f"Could not book the opening deposits: {exc.message}") from exc
            for balance, amount in some:
                balance.amount = amount

    # --- movements ---------------------------------------------------------------------

    def _book_movements(
        self, balances: SeededBalances, movements_wanted: int, seed: int
    ) -> tuple[int, Counter[str], float, int]:
        first_index = self._next_index()
        if first_index >= movements_wanted:
            return 0, Counter(), 0.0, first_index
        by_id = {balance.id: balance for balance in balances.items}
        self._refresh(by_id)  # someone may have used the demo accounts since the last run
        by_currency: dict[str, list[SeedBalance]] = {}
        for balance in balances.items:
            by_currency.setdefault(balance.currency, []).append(balance)
        refundable: deque[RefundCandidate] = deque(maxlen=REFUNDABLE_WINDOW)
        booked = 0
        refused: Counter[str] = Counter()
        bar = ProgressBar(self.progress_stream, movements_wanted - first_index, "movements")
        started = time.monotonic()
        pending = Pending()
        for index in range(first_index, movements_wanted):
            rng = random.Random(f"{seed}:movement:{index}")  # noqa: S311 - demo data, reproducible on purpose
            drawn = self._draw(index, rng, balances.items, by_currency, by_id, refundable, pending)
            last = index == movements_wanted - 1
            if isinstance(drawn, Refund) or len(pending.movements) >= BATCH_SIZE or last:
                booked += self._book_pending(pending, by_id, refundable, refused, index)
                pending = Pending()
            if isinstance(drawn, Refund):
                booked += self._book_refund(drawn, by_id, refused, index)
            bar.update(index - first_index + 1)
        bar.finish(movements_wanted - first_index)
        return booked, refused, time.monotonic() - started, first_index

    def _book_pending(
        self,
        pending: Pending,
        by_id: dict[UUID, SeedBalance],
        refundable: deque[RefundCandidate],
        refused: Counter[str],
        index: int,
    ) -> int:
        """Book the movements drawn since the last batch, as one batch; if it is refused, one at a time (each
        refusal counted, our picture of the balances read again). How many were booked."""
        if not pending.movements:
            return 0
        try:
            entries = self._batch(pending.movements, index)
        except DomainError:
            self._refresh(by_id)
            entries = []
            for movement in pending.movements:
                try:
                    entries += self._batch([movement], index)
                except DomainError as exc:
                    refused[exc.code] += 1
                    entries.append(None)
            self._refresh(by_id)
        for position in pending.payments:
            payment = entries[position]
            if payment is not None:
                refundable.append(RefundCandidate(payment.pk, payment.wallet_balance_id, payment.amount))
        return sum(entry is not None for entry in entries)

    @staticmethod
    def _batch(movements: list[dict[str, Any]], index: int) -> list[Transaction | None]:
        """The entries that answer `movements`, booked as one batch; only an outage stops the command."""
        try:
            return list(
                batch_create(movements=movements, owner=None, created_by=None, source=TransactionSource.SEED).entries
            )
        except ServiceUnavailable as exc:
            raise CommandError(f"Stopped at movement #{index}: {exc.message}") from exc

    def _book_refund(self, refund: Refund, by_id: dict[UUID, SeedBalance], refused: Counter[str], index: int) -> int:
        candidate = refund.candidate
        try:
            entry = refund_create(
                payment_id=candidate.payment_id,
                amount=refund.amount,
                description=refund.description,
                created_by=None,
                source=TransactionSource.SEED,
            )
        except ServiceUnavailable as exc:
            raise CommandError(f"Stopped at movement #{index}: {exc.message}") from exc
        except DomainError as exc:
            refused[exc.code] += 1
            self._refresh(by_id)
            return 0
        candidate.left -= refund.amount
        by_id[candidate.balance_id].amount = entry.balance_after
        return 1

    @staticmethod
    def _refresh(by_id: dict[UUID, SeedBalance]) -> None:
        """Our picture of the balances, read again (the demo accounts may be in use)."""
        for balance_id, amount in WalletBalance.objects.filter(pk__in=list(by_id)).values_list("id", "amount"):
            by_id[balance_id].amount = amount

    def _next_index(self) -> int:
        """One past the highest movement number already booked (0 on a fresh database)."""
        last = (
            Transaction.objects.filter(source=TransactionSource.SEED, description__startswith=DESCRIPTION_PREFIX)
            .order_by("-description")
            .values_list("description", flat=True)
            .first()
        )
        if last is None:
            return 0
        digits = last[len(DESCRIPTION_PREFIX) : len(DESCRIPTION_PREFIX) + INDEX_WIDTH]
        return int(digits) + 1 if digits.isdigit() else 0

    def _draw(
        self,
        index: int,
        rng: random.Random,
        balances: list[SeedBalance],
        by_currency: dict[str, list[SeedBalance]],
        by_id: dict[UUID, SeedBalance],
        refundable: deque[RefundCandidate],
        pending: Pending,
    ) -> Refund | None:
        """Movement `index`: a refund to book on its own, or a movement added to `pending`, our picture of the
        balances moved as it will move them."""
        kind = rng.choices(MOVEMENT_KINDS, MOVEMENT_WEIGHTS)[0]
        balance = rng.choice(balances)
        label = f"{DESCRIPTION_PREFIX}{index:0{INDEX_WIDTH}d}"

        if kind == "refund" and refundable:
            candidate = refundable[rng.randrange(len(refundable))]
            minor_unit = by_id[candidate.balance_id].minor_unit
            amount = candidate.left
            if rng.random() < 0.5:
                share = Decimal(rng.randint(20, 80)) / 100  # a part of what is left, never a float
                amount = round_down(candidate.left * share, minor_unit) or candidate.left
            if amount >= candidate.left:
                refundable.remove(candidate)
            return Refund(candidate, amount, f"{label}: refund")

        wanted = self._random_amount(rng, balance.currency, 1, 300)
        # Debits stay within half of what the balance holds, so the history never runs dry.
        affordable = min(wanted, round_down(balance.amount / 2, balance.minor_unit))
        if kind in ("withdrawal", "payment", "transfer") and affordable > 0:
            if kind == "withdrawal":
                pending.movements.append(_one(WITHDRAW, balance, affordable, f"{label}: ATM"))
                balance.amount -= affordable
                return None
            if kind == "payment":
                merchant = rng.choice(MERCHANTS)
                pending.payments.append(len(pending.movements))
                pending.movements.append(_one(PAYMENT, balance, affordable, f"{label}: {merchant}", merchant=merchant))
                balance.amount -= affordable
                return None
            destination = self._destination(rng, balance, balances, by_currency)
            if destination is not None:
                rate = self.rates.get((balance.currency, destination.currency))
                credit = (
                    affordable
                    if rate is None
                    else transfer_credit(amount=affordable, rate=rate, minor_unit=destination.minor_unit)
                )
                if credit > 0:
                    pending.movements.append(
                        {
                            "type": TRANSFER,
                            "from_wallet_balance_id": balance.id,
                            "to_wallet_balance_id": destination.id,
                            "amount": affordable,
                            "description": f"{label}: transfer",
                        }
                    )
                    balance.amount -= affordable
                    destination.amount += credit
                    return None
        # A deposit, or the fallback of a debit that this balance cannot afford.
        amount = self._random_amount(rng, balance.currency, 20, 1000)
        pending.movements.append(_one(DEPOSIT, balance, amount, f"{label}: top-up"))
        balance.amount += amount
        return None

    def _destination(
        self,
        rng: random.Random,
        source: SeedBalance,
        balances: list[SeedBalance],
        by_currency: dict[str, list[SeedBalance]],
    ) -> SeedBalance | None:
        same_currency = [balance for balance in by_currency[source.currency] if balance.id != source.id]
        if same_currency and rng.random() < 0.6:
            return rng.choice(same_currency)
        for _ in range(5):
            candidate = rng.choice(balances)
            if candidate.id != source.id and (
                candidate.currency == source.currency or self._has_rate(source, candidate)
            ):
                return candidate
        return None

    def _has_rate(self, source: SeedBalance, destination: SeedBalance) -> bool:
        return (source.currency, destination.currency) in self.rates

    def _random_amount(self, rng: random.Random, currency: str, low: int, high: int) -> Decimal:
        """Between `low` and `high` dollars' worth, in `currency`, rounded down to its minor unit."""
        dollars = Decimal(rng.randint(low * 100, high * 100)) / 100
        minor_unit = self.currencies[currency]
        return max(round_down(dollars * DOLLAR[currency], minor_unit), Decimal(1).scaleb(-minor_unit))

    # --- output ------------------------------------------------------------------------

    @staticmethod
    def _codes(refused: Counter[str]) -> str:
        return ", ".join(f"{code} {count}" for code, count in refused.most_common())

    def _print_logins(self, users_wanted: int) -> None:
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD!r}):")
        for email, name, _ in DEMO_USERS:
            self.stdout.write(f"  {email:<24} {name}")
        group = " (Finance group)" if Group.objects.filter(name=FINANCE_GROUP).exists() else ""
        self.stdout.write(f"  {FINANCE_EMAIL:<24} staff{group}")
        self.stdout.write(f"  {OPERATOR_EMAIL:<24} staff, funds the {LOYALTY_PROGRAM!r} programme ({LOYALTY_CURRENCY})")
        if users_wanted:
            self.stdout.write(f"  user0001@example.com ... user{users_wanted:04d}@example.com")
