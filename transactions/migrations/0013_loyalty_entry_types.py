"""The cashback's entry types, in the ledger's CHECK and in the chain trigger's list of credits.

LOYALTY (credit, on the payer) and LOYALTY_FUNDING (debit, on the funding
balance) move a reward; LOYALTY_REVERSAL (debit, on the payer) and
LOYALTY_RETURN (credit, on the funding balance) move back what a refund takes.
`transactions_ledger_chain` (migration 0002) decides the direction of a new
entry from its type: its function is replaced with the new list of credits.

It also lets one posting write several entries on one balance (a batch of
cashback debits the funding balance once per reward; a refund credits the
payer and takes cashback back from it): the balance row is updated once, to
its last entry, then the entries are inserted in sequence order. An entry
below the balance's `last_sequence` is accepted when it chains from the entry
before it (earlier rows of the same INSERT are visible to the trigger); the
newest must still equal the balance, and no entry may go beyond it. Any other
sequence at or below `last_sequence` is already taken (the unique index).
SQLite (development mode) has no trigger.
"""

from django.conf import settings
from django.db import migrations, models

CHAIN_FUNCTION = r"""
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
    IF NEW.sequence > current_sequence OR (NEW.sequence = current_sequence AND NEW.balance_after <> current_amount) THEN
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
"""
CREDITS_BEFORE = ("DEPOSIT", "TRANSFER_IN", "REFUND")
CREDITS_AFTER = (*CREDITS_BEFORE, "LOYALTY", "LOYALTY_RETURN")


def _chain_function(credits):  # type: ignore[no-untyped-def]
    listed = ", ".join(f"'{credit}'" for credit in credits)
    return CHAIN_FUNCTION.replace("CREDIT_TYPES", listed)


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_chain_function(CREDITS_AFTER), params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_chain_function(CREDITS_BEFORE), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("transactions", "0012_hold_guards"),
        ("wallets", "0006_staff_action_hold_voided"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="transaction",
            name="txn_type_known",
        ),
        migrations.AlterField(
            model_name="transaction",
            name="type",
            field=models.CharField(
                choices=[
                    ("DEPOSIT", "Deposit"),
                    ("WITHDRAWAL", "Withdrawal"),
                    ("PAYMENT", "Payment"),
                    ("TRANSFER_OUT", "Transfer out"),
                    ("TRANSFER_IN", "Transfer in"),
                    ("REFUND", "Refund"),
                    ("CAPTURE", "Capture"),
                    ("LOYALTY", "Loyalty cashback"),
                    ("LOYALTY_FUNDING", "Loyalty funding"),
                    ("LOYALTY_REVERSAL", "Loyalty reversal"),
                    ("LOYALTY_RETURN", "Loyalty return"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="transaction",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "type__in",
                        [
                            "DEPOSIT",
                            "WITHDRAWAL",
                            "PAYMENT",
                            "TRANSFER_OUT",
                            "TRANSFER_IN",
                            "REFUND",
                            "CAPTURE",
                            "LOYALTY",
                            "LOYALTY_FUNDING",
                            "LOYALTY_REVERSAL",
                            "LOYALTY_RETURN",
                        ],
                    )
                ),
                name="txn_type_known",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
