"""Finance manages the loyalty programmes; Support and Finance see programmes and rewards.

The groups are brought up to date by the function that created them
(accounts/migrations/0002_back_office_groups.py), now that these models exist.
"""

import importlib

from django.db import migrations


def grant_loyalty(apps, schema_editor):  # type: ignore[no-untyped-def]
    groups = importlib.import_module("accounts.migrations.0002_back_office_groups")
    groups.create_back_office_groups(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial"), ("accounts", "0002_back_office_groups")]

    operations = [migrations.RunPython(grant_loyalty, migrations.RunPython.noop)]
