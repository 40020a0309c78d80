"""The record of reconcile's runs, readable by Support and Finance.

The groups are brought up to date by the function that created them
(accounts/migrations/0002_back_office_groups.py), now that this model exists.
"""

import importlib

from django.db import migrations, models


def grant_view(apps, schema_editor):  # type: ignore[no-untyped-def]
    groups = importlib.import_module("accounts.migrations.0002_back_office_groups")
    groups.create_back_office_groups(apps, schema_editor)


class Migration(migrations.Migration):
    initial = True

    dependencies = [("accounts", "0002_back_office_groups")]

    operations = [
        migrations.CreateModel(
            name="ReconcileRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("started_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField()),
                ("ok", models.BooleanField()),
                ("problem_count", models.PositiveIntegerField(default=0)),
                ("summary", models.TextField()),
            ],
            options={
                "verbose_name": "reconcile run",
                "ordering": ["-id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("finished_at__gte", models.F("started_at"))),
                        name="reconcilerun_finishes_after_start",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("ok", False), ("problem_count", 0), _connector="OR"),
                        name="reconcilerun_ok_has_no_problem",
                    ),
                ],
            },
        ),
        migrations.RunPython(grant_view, migrations.RunPython.noop),
    ]
