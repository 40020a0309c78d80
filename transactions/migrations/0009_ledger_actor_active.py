"""The database refuses a ledger entry asked for by a deactivated user, as the money services do.

`transactions_ledger_actor_active` checks `created_by` of each new entry: an
account deactivated after the services read it (they read it with the
balances, under the locks) still moves nothing. Entries of the system
(`created_by` empty) skip it. SQLite (development mode) does not get it.
"""

from django.db import migrations

FORWARDS = r"""
CREATE OR REPLACE FUNCTION transactions_ledger_actor_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM accounts_user WHERE id = NEW.created_by_id AND is_active) THEN
        RAISE EXCEPTION 'ledger entry % asked for by inactive user %', NEW.id, NEW.created_by_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER transactions_ledger_actor_active
    BEFORE INSERT ON transactions_transaction
    FOR EACH ROW WHEN (NEW.created_by_id IS NOT NULL)
    EXECUTE FUNCTION transactions_ledger_actor_active();
"""

BACKWARDS = r"""
DROP TRIGGER IF EXISTS transactions_ledger_actor_active ON transactions_transaction;
DROP FUNCTION IF EXISTS transactions_ledger_actor_active();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARDS, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0008_entry_ids_time_ordered"), ("accounts", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
