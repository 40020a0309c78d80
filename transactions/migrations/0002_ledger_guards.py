"""PostgreSQL guards of the ledger, so that the database holds the rules too, not only Python.

* `transactions_ledger_immutable`: UPDATE and DELETE of a ledger entry are
  refused, whoever asks (the ORM, the admin, or plain SQL).
* `transactions_ledger_chain`: an entry may only be inserted as the newest link
  of its balance's chain: its `sequence` is the balance's `last_sequence`,
  its `balance_after` is the balance's amount, and it follows from the previous
  entry (`balance_after` of sequence − 1, plus a credit or minus a debit).
  The money services update the balance first, then insert the entries, in one
  transaction under the balance's row lock.

SQLite (development mode) gets neither; TRUNCATE (used by test teardown) is not
an UPDATE or DELETE and is not refused.
"""

from django.db import migrations

FORWARDS = r"""
CREATE OR REPLACE FUNCTION transactions_ledger_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER transactions_ledger_immutable
    BEFORE UPDATE OR DELETE ON transactions_transaction
    FOR EACH ROW EXECUTE FUNCTION transactions_ledger_immutable();

CREATE OR REPLACE FUNCTION transactions_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    current_amount numeric;
    current_sequence bigint;
    previous_after numeric;
    expected numeric;
BEGIN
    SELECT amount, last_sequence INTO current_amount, current_sequence
        FROM wallets_walletbalance WHERE id = NEW.wallet_balance_id;
    IF NEW.sequence <> current_sequence OR NEW.balance_after <> current_amount THEN
        RAISE EXCEPTION 'ledger entry % does not match its balance % (sequence %, balance_after %; balance holds % at sequence %)',
            NEW.id, NEW.wallet_balance_id, NEW.sequence, NEW.balance_after, current_amount, current_sequence
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
    IF NEW.type IN ('DEPOSIT', 'TRANSFER_IN', 'REFUND') THEN
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

CREATE TRIGGER transactions_ledger_chain
    BEFORE INSERT ON transactions_transaction
    FOR EACH ROW EXECUTE FUNCTION transactions_ledger_chain();
"""

BACKWARDS = r"""
DROP TRIGGER IF EXISTS transactions_ledger_chain ON transactions_transaction;
DROP FUNCTION IF EXISTS transactions_ledger_chain();
DROP TRIGGER IF EXISTS transactions_ledger_immutable ON transactions_transaction;
DROP FUNCTION IF EXISTS transactions_ledger_immutable();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARDS, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_initial"), ("wallets", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
