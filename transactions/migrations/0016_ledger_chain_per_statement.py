"""The ledger's insert guard runs once per statement over the rows it inserted, and checks the actor too.

Before, each new entry ran two row triggers and four queries from them:
`transactions_ledger_actor_active` (is the actor an active user?) and
`transactions_ledger_chain` (the entry's balance and its wallet's owner, the
counterpart, the previous entry). Starting a query costs more than the index
look-ups it makes: a third of the triggers' time was the executor's start-up,
once per query per entry, and the triggers were a quarter of PostgreSQL's time
in a batch of 100 transfers. Now `transactions_ledger_chain` runs once per
INSERT, after it, over the statement's new rows (its transition table `added`):
one query makes every entry's look-ups and returns the first entry, in insertion
order, that fails a check. The checks, their errors and their order are the
old ones: the actor (`insufficient_privilege`, which the posting engine answers
as an inactive account), then the balance, its wallet, owner and currency, the
counterpart (`foreign_key_violation`), then the entry against its balance and
the previous entry (`check_violation`). An entry whose previous one comes in the
same statement finds it, as the row trigger did. Column constraints (CHECK,
NOT NULL, the unique (balance, sequence)) now speak before this guard.
`transactions/tests/test_database_guards.py` holds each refusal.
"""

from importlib import import_module

from django.db import migrations

CREDITS = "'DEPOSIT', 'TRANSFER_IN', 'REFUND', 'LOYALTY', 'LOYALTY_RETURN'"

CHAIN = r"""
DROP TRIGGER IF EXISTS transactions_ledger_actor_active ON transactions_transaction;
DROP FUNCTION IF EXISTS transactions_ledger_actor_active();
DROP TRIGGER IF EXISTS transactions_ledger_chain ON transactions_transaction;

CREATE OR REPLACE FUNCTION transactions_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
    expected numeric;
BEGIN
    -- The first new entry, in the order they were inserted, that fails any check. Each entry's look-ups are
    -- made in a LATERAL subquery that OFFSET 0 keeps from being flattened: always by primary key or the
    -- (balance, sequence) key, one entry at a time, however many the statement inserted.
    SELECT added.id, added.wallet_balance_id, added.wallet_id, added.owner_id, added.currency_id, added.type,
           added.amount, added.balance_after, added.sequence, added.related_wallet_balance_id, added.created_by_id,
           found.balance_id, found.balance_amount, found.balance_sequence, found.balance_wallet,
           found.balance_owner, found.balance_currency, found.previous_after, found.counterpart_ok, found.actor_ok
        INTO bad
        FROM added
        CROSS JOIN LATERAL (
            SELECT b.id AS balance_id, b.amount AS balance_amount, b.last_sequence AS balance_sequence,
                   b.wallet_id AS balance_wallet, w.owner_id AS balance_owner, b.currency_id AS balance_currency,
                   CASE WHEN added.sequence = 1 THEN 0 ELSE (
                       SELECT previous.balance_after FROM transactions_transaction previous
                       WHERE previous.wallet_balance_id = added.wallet_balance_id
                         AND previous.sequence = added.sequence - 1
                   ) END AS previous_after,
                   added.related_wallet_balance_id IS NULL OR EXISTS (
                       SELECT 1 FROM wallets_walletbalance counterpart
                       WHERE counterpart.id = added.related_wallet_balance_id AND counterpart.last_sequence > 0
                   ) AS counterpart_ok,
                   added.created_by_id IS NULL OR EXISTS (
                       SELECT 1 FROM accounts_user actor WHERE actor.id = added.created_by_id AND actor.is_active
                   ) AS actor_ok
            FROM (SELECT) AS one
            LEFT JOIN wallets_walletbalance b ON b.id = added.wallet_balance_id
            LEFT JOIN wallets_wallet w ON w.id = b.wallet_id
            OFFSET 0
        ) AS found
        WHERE NOT found.actor_ok
           OR found.balance_id IS NULL
           OR added.wallet_id <> found.balance_wallet OR added.owner_id <> found.balance_owner
           OR added.currency_id <> found.balance_currency
           OR NOT found.counterpart_ok
           OR added.sequence > found.balance_sequence
           OR (added.sequence = found.balance_sequence AND added.balance_after <> found.balance_amount)
           OR found.previous_after IS NULL
           OR added.balance_after <> CASE WHEN added.type IN (CREDIT_TYPES)
                                          THEN found.previous_after + added.amount
                                          ELSE found.previous_after - added.amount END
        LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT bad.actor_ok THEN
        RAISE EXCEPTION 'ledger entry % asked for by inactive user %', bad.id, bad.created_by_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF bad.balance_id IS NULL THEN
        RAISE EXCEPTION 'ledger entry % names no balance (%)', bad.id, bad.wallet_balance_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF bad.wallet_id <> bad.balance_wallet OR bad.owner_id <> bad.balance_owner
            OR bad.currency_id <> bad.balance_currency THEN
        RAISE EXCEPTION 'ledger entry % names wallet %, owner %, currency %; its balance % is of wallet %, owner %, currency %',
            bad.id, bad.wallet_id, bad.owner_id, bad.currency_id, bad.wallet_balance_id,
            bad.balance_wallet, bad.balance_owner, bad.balance_currency
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT bad.counterpart_ok THEN
        RAISE EXCEPTION 'ledger entry % names a counterpart % that is no balance with entries',
            bad.id, bad.related_wallet_balance_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF bad.sequence > bad.balance_sequence
            OR (bad.sequence = bad.balance_sequence AND bad.balance_after <> bad.balance_amount) THEN
        RAISE EXCEPTION 'ledger entry % does not match its balance % (sequence %, balance_after %; balance holds % at sequence %)',
            bad.id, bad.wallet_balance_id, bad.sequence, bad.balance_after, bad.balance_amount, bad.balance_sequence
            USING ERRCODE = 'check_violation';
    END IF;
    IF bad.previous_after IS NULL THEN
        RAISE EXCEPTION 'ledger entry % breaks the chain of balance %: no entry %',
            bad.id, bad.wallet_balance_id, bad.sequence - 1 USING ERRCODE = 'check_violation';
    END IF;
    IF bad.type IN (CREDIT_TYPES) THEN
        expected := bad.previous_after + bad.amount;
    ELSE
        expected := bad.previous_after - bad.amount;
    END IF;
    RAISE EXCEPTION 'ledger entry % breaks the chain of balance %: % after %, expected %',
        bad.id, bad.wallet_balance_id, bad.balance_after, bad.previous_after, expected
        USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER transactions_ledger_chain
    AFTER INSERT ON transactions_transaction
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT
    EXECUTE FUNCTION transactions_ledger_chain();
""".replace("CREDIT_TYPES", CREDITS)


# Going back: the row trigger as 0002 made it, running the function 0015 wrote.
ROW_TRIGGER = """
DROP TRIGGER IF EXISTS transactions_ledger_chain ON transactions_transaction;
CREATE TRIGGER transactions_ledger_chain
    BEFORE INSERT ON transactions_transaction
    FOR EACH ROW EXECUTE FUNCTION transactions_ledger_chain();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHAIN, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_TRIGGER, params=None)
        schema_editor.execute(_migration("0015_ledger_references_held_by_triggers").CHAIN, params=None)
        schema_editor.execute(_migration("0009_ledger_actor_active").FORWARDS, params=None)


def _migration(name: str):  # type: ignore[no-untyped-def]
    return import_module(f"transactions.migrations.{name}")


class Migration(migrations.Migration):
    dependencies = [("transactions", "0015_ledger_references_held_by_triggers")]

    operations = [migrations.RunPython(forwards, backwards)]
