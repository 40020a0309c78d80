"""PostgreSQL guards of the holds, and the back-office groups' right to void them.

`transactions_hold_guard` lets an UPDATE of a hold through only while the hold
is active, and only to resolve it or capture more of it: its balance, owner,
currency, amount, reference, expiry and texts never change, `captured_amount`
never falls, and a resolved hold (captured, voided, expired) is never changed
again. A hold is never deleted: it is the record of money that was reserved.
SQLite (development mode) does not get it.
"""

import importlib

from django.db import migrations

FORWARDS = r"""
CREATE OR REPLACE FUNCTION transactions_hold_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'holds are never deleted: hold % refused', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status <> 'active' THEN
        RAISE EXCEPTION 'hold % is % and can no longer change', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.wallet_balance_id <> OLD.wallet_balance_id OR NEW.owner_id <> OLD.owner_id
        OR NEW.currency_id <> OLD.currency_id OR NEW.amount <> OLD.amount OR NEW.reference <> OLD.reference
        OR NEW.expires_at <> OLD.expires_at OR NEW.created_at <> OLD.created_at
        OR NEW.description <> OLD.description OR NEW.merchant <> OLD.merchant
        OR NEW.created_by_id IS DISTINCT FROM OLD.created_by_id THEN
        RAISE EXCEPTION 'hold %: only its status, captured amount and resolution time may change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.captured_amount < OLD.captured_amount THEN
        RAISE EXCEPTION 'hold %: the captured amount never falls (% to %)', OLD.id, OLD.captured_amount,
            NEW.captured_amount USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER transactions_hold_guard
    BEFORE UPDATE OR DELETE ON transactions_hold
    FOR EACH ROW EXECUTE FUNCTION transactions_hold_guard();
"""

BACKWARDS = r"""
DROP TRIGGER IF EXISTS transactions_hold_guard ON transactions_hold;
DROP FUNCTION IF EXISTS transactions_hold_guard();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARDS, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARDS, params=None)


def grant_void_hold(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Support and Finance may void holds (accounts/migrations/0002_back_office_groups.py)."""
    groups = importlib.import_module("accounts.migrations.0002_back_office_groups")
    groups.create_back_office_groups(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0011_holds"), ("accounts", "0002_back_office_groups")]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.RunPython(grant_void_hold, migrations.RunPython.noop),
    ]
