"""The ledger's membership CHECKs written as one array constant each (`wallet_project.db.OneOf`).

PostgreSQL reads a table's CHECK constraints back from their stored text at
every INSERT: `type IN (…11 values…)` was 2.7 KB of it, read twice per transfer.
The same rules, a third of the text. Not atomic, so that each constraint is
validated while writes go on (`wallet_project.db.replace_checks`).
"""

from django.db import migrations, models
from django.db.models import Q

from wallet_project.db import replace_checks

TYPES = [
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
]
SOURCES = ["API", "ADMIN", "SEED", "SYSTEM"]
TRANSFERS = ["TRANSFER_OUT", "TRANSFER_IN"]


def _checks(membership: str) -> list[models.CheckConstraint]:
    def one_of(field: str, values: list[str]) -> Q:
        return Q(**{f"{field}__{membership}": values})

    return [
        models.CheckConstraint(condition=one_of("type", TYPES), name="txn_type_known"),
        models.CheckConstraint(condition=one_of("source", SOURCES), name="txn_source_known"),
        models.CheckConstraint(
            condition=one_of("type", TRANSFERS) | Q(related_wallet_balance__isnull=True, exchange_rate__isnull=True),
            name="txn_only_transfers_have_counterparts",
        ),
        models.CheckConstraint(
            condition=~one_of("type", TRANSFERS) | Q(related_wallet_balance__isnull=False),
            name="txn_transfers_have_counterpart",
        ),
    ]


COMPACT, AS_BEFORE = _checks("one_of"), _checks("in")


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    replace_checks(schema_editor, apps.get_model("transactions", "Transaction"), COMPACT)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    replace_checks(schema_editor, apps.get_model("transactions", "Transaction"), AS_BEFORE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("transactions", "0016_ledger_chain_per_statement")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *[migrations.RemoveConstraint(model_name="transaction", name=check.name) for check in COMPACT],
                *[migrations.AddConstraint(model_name="transaction", constraint=check) for check in COMPACT],
            ]
        ),
        migrations.RunPython(forwards, backwards),
    ]
