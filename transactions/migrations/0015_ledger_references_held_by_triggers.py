"""The ledger's references held by its triggers instead of foreign keys, and the chain's tip by its balance.

Each foreign key of an entry cost a look-up and a row lock at commit (six per
entry: on the balance, the counterpart, the wallet, the owner, the currency,
the actor), and the statement trigger `transactions_ledger_chain_tip` kept a
copy of every inserted row to look at once the statement was done. What they
held is now held with less work:

- `transactions_ledger_chain` (per entry, before the insert) already read the
  entry's balance: it now refuses an entry whose balance does not exist, whose
  wallet, owner or currency is not its balance's (stronger than the foreign
  keys, which only asked that each exist), or whose counterpart is not a
  balance that has entries itself. `transactions_ledger_actor_active` already
  refused an actor who does not exist or is inactive.
- Nothing those rows point to can go away while the entries need it: a balance
  that has had an entry is never deleted (`wallets_balance_keeps_ledger`), so
  its wallet, currency and owner stay (their own foreign keys); a user who
  booked entries on someone else's balance is never deleted
  (`accounts_user_keeps_ledger`, over the partial index
  `txn_created_by_others`); an entry a user asked for on their own balance
  keeps that user through the balance's wallet.
- The tip: a balance whose amount or `last_sequence` changes must, when the
  transaction commits, have its entry at `last_sequence` carrying that amount,
  and its `last_sequence` never goes back (`wallets_balance_chain_tip`, a
  deferred constraint trigger). This holds what the statement trigger held (an
  INSERT that stops short of its balance) and more: a balance moved with no
  entry at all is refused too. A new balance starts at 0 with no entry.

The Python models keep their relations (`db_constraint=False`), so the ORM's
joins and `on_delete=PROTECT` are as before. `transactions/tests/test_database_guards.py`
proves that each bad write the foreign keys refused is still refused. SQLite
(development mode) has none of these triggers.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

CREDITS = "'DEPOSIT', 'TRANSFER_IN', 'REFUND', 'LOYALTY', 'LOYALTY_RETURN'"

CHAIN = r"""
CREATE OR REPLACE FUNCTION transactions_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    balance record;
    previous_after numeric;
    expected numeric;
BEGIN
    SELECT b.amount, b.last_sequence, b.currency_id, b.wallet_id, w.owner_id INTO balance
        FROM wallets_walletbalance b JOIN wallets_wallet w ON w.id = b.wallet_id
        WHERE b.id = NEW.wallet_balance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger entry % names no balance (%)', NEW.id, NEW.wallet_balance_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.wallet_id <> balance.wallet_id OR NEW.owner_id <> balance.owner_id
            OR NEW.currency_id <> balance.currency_id THEN
        RAISE EXCEPTION 'ledger entry % names wallet %, owner %, currency %; its balance % is of wallet %, owner %, currency %',
            NEW.id, NEW.wallet_id, NEW.owner_id, NEW.currency_id, NEW.wallet_balance_id,
            balance.wallet_id, balance.owner_id, balance.currency_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.related_wallet_balance_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM wallets_walletbalance WHERE id = NEW.related_wallet_balance_id AND last_sequence > 0) THEN
        RAISE EXCEPTION 'ledger entry % names a counterpart % that is no balance with entries',
            NEW.id, NEW.related_wallet_balance_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.sequence > balance.last_sequence
            OR (NEW.sequence = balance.last_sequence AND NEW.balance_after <> balance.amount) THEN
        RAISE EXCEPTION 'ledger entry % does not match its balance % (sequence %, balance_after %; balance holds % at sequence %)',
            NEW.id, NEW.wallet_balance_id, NEW.sequence, NEW.balance_after, balance.amount, balance.last_sequence
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.sequence = 1 THEN
        previous_after := 0;
    ELSE
        SELECT balance_after INTO previous_after FROM transactions_transaction
            WHERE wallet_balance_id = NEW.wallet_balance_id AND sequence = NEW.sequence - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ledger entry % breaks the chain of balance %: no entry %',
                NEW.id, NEW.wallet_balance_id, NEW.sequence - 1 USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.type IN (CREDIT_TYPES) THEN
        expected := previous_after + NEW.amount;
    ELSE
        expected := previous_after - NEW.amount;
    END IF;
    IF NEW.balance_after <> expected THEN
        RAISE EXCEPTION 'ledger entry % breaks the chain of balance %: % after %, expected %',
            NEW.id, NEW.wallet_balance_id, NEW.balance_after, previous_after, expected
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
""".replace("CREDIT_TYPES", CREDITS)

GUARDS = r"""
DROP TRIGGER IF EXISTS transactions_ledger_chain_tip ON transactions_transaction;
DROP FUNCTION IF EXISTS transactions_ledger_chain_tip();

CREATE OR REPLACE FUNCTION wallets_balance_chain_tip() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tip_after numeric;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.last_sequence < OLD.last_sequence THEN
        RAISE EXCEPTION 'balance % went back from sequence % to %', NEW.id, OLD.last_sequence, NEW.last_sequence
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.last_sequence = 0 THEN
        tip_after := 0;
    ELSE
        SELECT balance_after INTO tip_after FROM transactions_transaction
            WHERE wallet_balance_id = NEW.id AND sequence = NEW.last_sequence;
    END IF;
    IF tip_after IS DISTINCT FROM NEW.amount THEN
        RAISE EXCEPTION 'balance % holds % at sequence %, but its ledger entry % says %',
            NEW.id, NEW.amount, NEW.last_sequence, NEW.last_sequence, coalesce(tip_after::text, 'nothing')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER wallets_balance_chain_tip
    AFTER UPDATE OF amount, last_sequence ON wallets_walletbalance
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.amount IS DISTINCT FROM OLD.amount OR NEW.last_sequence IS DISTINCT FROM OLD.last_sequence)
    EXECUTE FUNCTION wallets_balance_chain_tip();

CREATE CONSTRAINT TRIGGER wallets_balance_chain_tip_new
    AFTER INSERT ON wallets_walletbalance
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.amount <> 0 OR NEW.last_sequence <> 0)
    EXECUTE FUNCTION wallets_balance_chain_tip();

CREATE OR REPLACE FUNCTION wallets_balance_keeps_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'balance % has ledger entries (sequence %): it cannot be deleted', OLD.id, OLD.last_sequence
        USING ERRCODE = 'foreign_key_violation';
END;
$$;

CREATE TRIGGER wallets_balance_keeps_ledger
    BEFORE DELETE ON wallets_walletbalance
    FOR EACH ROW WHEN (OLD.last_sequence > 0)
    EXECUTE FUNCTION wallets_balance_keeps_ledger();

CREATE OR REPLACE FUNCTION accounts_user_keeps_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM transactions_transaction
               WHERE created_by_id = OLD.id AND (created_by_id < owner_id OR created_by_id > owner_id)) THEN
        RAISE EXCEPTION 'user % booked ledger entries for others: they cannot be deleted', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER accounts_user_keeps_ledger
    BEFORE DELETE ON accounts_user
    FOR EACH ROW EXECUTE FUNCTION accounts_user_keeps_ledger();
"""

# What 0013 and 0014 left, for going back (the foreign keys come back with the fields): their own text.

GUARDS_BEFORE = r"""
DROP TRIGGER IF EXISTS accounts_user_keeps_ledger ON accounts_user;
DROP FUNCTION IF EXISTS accounts_user_keeps_ledger();
DROP TRIGGER IF EXISTS wallets_balance_keeps_ledger ON wallets_walletbalance;
DROP FUNCTION IF EXISTS wallets_balance_keeps_ledger();
DROP TRIGGER IF EXISTS wallets_balance_chain_tip ON wallets_walletbalance;
DROP TRIGGER IF EXISTS wallets_balance_chain_tip_new ON wallets_walletbalance;
DROP FUNCTION IF EXISTS wallets_balance_chain_tip();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHAIN, params=None)
        schema_editor.execute(GUARDS, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        loyalty_types = import_module("transactions.migrations.0013_loyalty_entry_types")
        schema_editor.execute(GUARDS_BEFORE, params=None)
        schema_editor.execute(loyalty_types._chain_function(loyalty_types.CREDITS_AFTER), params=None)
        schema_editor.execute(import_module("transactions.migrations.0014_ledger_chain_tip").FORWARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("transactions", "0014_ledger_chain_tip"),
        ("wallets", "0007_staff_action_mfa_reset"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.AlterField(
            model_name="transaction",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="currency",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.currency",
            ),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="owner",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="related_wallet_balance",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.walletbalance",
            ),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="wallet",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.wallet",
            ),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="wallet_balance",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="wallets.walletbalance",
            ),
        ),
        migrations.AddIndex(
            model_name="transaction",
            index=models.Index(
                condition=models.Q(
                    ("created_by__lt", models.F("owner")), ("created_by__gt", models.F("owner")), _connector="OR"
                ),
                fields=["created_by"],
                name="txn_created_by_others",
            ),
        ),
    ]
