"""`manage.py seed_demo`: demo data through the one road for money, idempotent."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from tests.invariants import assert_ledger_invariants
from transactions.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS, FINANCE_EMAIL, SEED_CURRENCIES
from transactions.models import Transaction, TransactionSource
from wallets.models import Wallet, WalletBalance
from wallets.services import wallet_set_frozen

pytestmark = pytest.mark.django_db


def seed(**options: object) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "wallets": Wallet.objects.count(),
        "balances": WalletBalance.objects.count(),
        "entries": Transaction.objects.count(),
    }


def movement_numbers() -> set[int]:
    numbers = set()
    for description in Transaction.objects.filter(description__startswith="Seed #").values_list(
        "description", flat=True
    ):
        match = re.match(r"Seed #(\d+):", description)
        assert match, description
        numbers.add(int(match.group(1)))
    return numbers


def test_seed_demo_creates_demo_logins_wallets_in_six_currencies_and_a_seed_history():
    output = seed(movements=40)

    for email, _, _ in DEMO_USERS:
        user = User.objects.get(email=email)
        assert user.check_password(DEMO_PASSWORD)
        assert not user.is_staff
        assert email in output
    finance = User.objects.get(email=FINANCE_EMAIL)
    assert finance.is_staff and finance.check_password(DEMO_PASSWORD)
    assert DEMO_PASSWORD in output
    assert set(WalletBalance.objects.values_list("currency_id", flat=True)) == set(SEED_CURRENCIES)
    # Every entry came through the services as SEED: openings plus the numbered movements.
    assert set(Transaction.objects.values_list("source", flat=True)) == {TransactionSource.SEED}
    assert Transaction.objects.filter(description="Opening deposit").count() == WalletBalance.objects.count()
    assert movement_numbers() <= set(range(40))
    assert len(movement_numbers()) >= 30
    for balance in WalletBalance.objects.all():
        assert balance.amount >= 0
        assert balance.last_sequence == balance.entries.count()


def test_seed_demo_a_second_run_adds_nothing_and_fails_on_nothing():
    seed(movements=40)
    before = counts()

    output = seed(movements=40)

    assert counts() == before
    assert "Already seeded: nothing to add." in output


def test_seed_demo_asked_for_more_movements_books_only_the_missing_ones():
    seed(movements=15)
    first = movement_numbers()
    entries_before = Transaction.objects.count()

    seed(movements=25)

    assert Transaction.objects.count() > entries_before
    assert max(first) <= 14
    assert movement_numbers() - first <= set(range(15, 25))
    assert max(movement_numbers()) >= 20


def test_seed_demo_extra_users_get_the_demo_password_and_a_funded_wallet():
    seed(users=3, movements=0)

    for number in (1, 2, 3):
        user = User.objects.get(email=f"user{number:04d}@example.com")
        assert user.check_password(DEMO_PASSWORD)
        wallet = Wallet.objects.get(owner=user, name="Main")
        assert 1 <= wallet.balances.count() <= 3
        assert all(balance.amount > 0 for balance in wallet.balances.all())
    assert not User.objects.filter(email="user0004@example.com").exists()


def test_seed_demo_puts_the_finance_user_in_the_finance_group_when_there_is_one():
    group, _ = Group.objects.get_or_create(name="Finance")

    seed(movements=0)

    assert User.objects.get(email=FINANCE_EMAIL).groups.filter(pk=group.pk).exists()
    seed(movements=0)
    assert User.objects.get(email=FINANCE_EMAIL).groups.count() == 1


def test_seed_demo_books_its_history_and_openings_in_batches(monkeypatch):
    from transactions.management.commands import seed_demo

    sizes = []
    real_batch_create = seed_demo.batch_create

    def counted(**kwargs):
        sizes.append(len(kwargs["movements"]))
        return real_batch_create(**kwargs)

    monkeypatch.setattr(seed_demo, "batch_create", counted)

    seed(users=5, movements=300)

    openings = Transaction.objects.filter(description="Opening deposit").count()
    numbered = len(movement_numbers())
    refunds = Transaction.objects.filter(description__regex=r"^Seed #\d+: refund$").count()
    assert sum(sizes) == openings - 1 + numbered - refunds  # the loyalty funding opens on its own
    assert max(sizes) > 1 and len(sizes) < numbered / 2
    assert max(sizes) <= seed_demo.MAX_MOVEMENTS
    call_command("reconcile", stdout=io.StringIO(), stderr=io.StringIO())  # raises CommandError on any fault
    assert_ledger_invariants()


def test_seed_demo_books_a_refused_batch_one_movement_at_a_time():
    seed(movements=5)
    frozen = Wallet.objects.get(owner__email=DEMO_USERS[0][0], name="Main")
    wallet_set_frozen(wallet_id=frozen.pk, frozen=True)
    entries_on_frozen = Transaction.objects.filter(wallet=frozen).count()

    output = seed(movements=200)

    assert "wallet_frozen" in output
    assert Transaction.objects.filter(wallet=frozen).count() == entries_on_frozen
    assert len(movement_numbers() & set(range(5, 200))) >= 150


def test_seed_demo_books_the_openings_a_stopped_run_left_out(monkeypatch):
    from transactions.management.commands.seed_demo import Command

    def stopped(self, openings):
        raise CommandError("stopped before the openings")

    with monkeypatch.context() as patched:
        patched.setattr(Command, "_book_openings", stopped)
        with pytest.raises(CommandError):
            seed(users=2, movements=0)
    assert WalletBalance.objects.filter(last_sequence=0).exists()

    seed(users=2, movements=0)

    assert not WalletBalance.objects.filter(last_sequence=0).exists()
    assert Transaction.objects.filter(description="Opening deposit").count() == WalletBalance.objects.count()
