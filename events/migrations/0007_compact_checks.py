"""The events' type CHECK written as one array constant (`wallet_project.db.OneOf`): PostgreSQL reads it back
from its stored text at every INSERT, two per movement; the same rule, a third of the text."""

from django.db import migrations, models
from django.db.models import Q

from wallet_project.db import replace_checks

TYPES = [
    "movement.created",
    "hold.created",
    "hold.captured",
    "hold.voided",
    "hold.expired",
    "wallet.created",
    "wallet.frozen",
    "wallet.unfrozen",
    "balance.created",
    "rate.changed",
    "user.mfa_enabled",
    "user.mfa_disabled",
    "loyalty.unfunded",
]
COMPACT = [models.CheckConstraint(condition=Q(type__one_of=TYPES), name="event_type_known")]
AS_BEFORE = [models.CheckConstraint(condition=Q(type__in=TYPES), name="event_type_known")]


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    replace_checks(schema_editor, apps.get_model("events", "Event"), COMPACT)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    replace_checks(schema_editor, apps.get_model("events", "Event"), AS_BEFORE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("events", "0006_event_type_index_unused")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="event", name="event_type_known"),
                migrations.AddConstraint(model_name="event", constraint=COMPACT[0]),
            ]
        ),
        migrations.RunPython(forwards, backwards),
    ]
