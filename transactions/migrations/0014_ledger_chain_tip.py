"""The ledger's newest entry of each balance an INSERT touched is its balance, once the statement is done.

Since one posting may write several entries on one balance (0013), the row
trigger `transactions_ledger_chain` accepts an entry below the balance's
`last_sequence` when it chains from the one before: it can no longer see,
row by row, that the statement goes on up to the balance. This statement
trigger does, once per INSERT over the rows it inserted: for each balance,
the newest inserted entry is its `last_sequence` and carries its amount. An
INSERT that stops short of its balance (entries n+1 of a balance moved on to
n+2) is refused, as the row trigger refused it before. SQLite (development
mode) has no trigger.
"""

from django.db import migrations

FORWARDS = r"""
CREATE OR REPLACE FUNCTION transactions_ledger_chain_tip() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    short record;
BEGIN
    SELECT inserted.wallet_balance_id, inserted.newest, balance.last_sequence, balance.amount
        INTO short
        FROM (SELECT wallet_balance_id, max(sequence) AS newest FROM new_entries GROUP BY wallet_balance_id)
            AS inserted
        JOIN wallets_walletbalance balance ON balance.id = inserted.wallet_balance_id
        LEFT JOIN transactions_transaction tip
            ON tip.wallet_balance_id = balance.id AND tip.sequence = balance.last_sequence
        WHERE inserted.newest <> balance.last_sequence OR tip.balance_after IS DISTINCT FROM balance.amount
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entries of balance % stop at sequence %; the balance holds % at sequence %',
            short.wallet_balance_id, short.newest, short.amount, short.last_sequence
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER transactions_ledger_chain_tip
    AFTER INSERT ON transactions_transaction
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION transactions_ledger_chain_tip();
"""

BACKWARDS = r"""
DROP TRIGGER IF EXISTS transactions_ledger_chain_tip ON transactions_transaction;
DROP FUNCTION IF EXISTS transactions_ledger_chain_tip();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARDS, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0013_loyalty_entry_types")]

    operations = [migrations.RunPython(forwards, backwards)]
