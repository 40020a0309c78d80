"""Ledger entries are named so in the admin, and exporting the ledger is a permission of its own.

The CSV export writes every selected entry with its owner's email, for the
whole ledger if asked: who may do that is a policy, not a side effect of being
able to read the ledger. `export_ledger` is given to the Finance group (not to
Support); see docs/OPERATIONS.md, "Back office".
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EXPORT_GROUPS = ("Finance",)


def grant_export_ledger(apps, schema_editor):
    """Give `transactions.export_ledger` to the groups that may export; safe to run again."""
    using = schema_editor.connection.alias if schema_editor is not None else "default"
    app_config = apps.get_app_config("transactions")
    # Migration-state app configs have no models module; create_permissions skips those.
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = models_module
    permission = (
        apps.get_model("auth", "Permission")
        .objects.using(using)
        .get(content_type__app_label="transactions", codename="export_ledger")
    )
    for group in apps.get_model("auth", "Group").objects.using(using).filter(name__in=EXPORT_GROUPS):
        group.permissions.add(permission)


def revoke_export_ledger(apps, schema_editor):
    permission_model = apps.get_model("auth", "Permission")
    permission_model.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="transactions", codename="export_ledger"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("transactions", "0009_ledger_actor_active"),
        ("accounts", "0002_back_office_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="transaction",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("refund_payment", "Can refund payments"),
                    ("export_ledger", "Can export the ledger as CSV"),
                ],
                "verbose_name": "ledger entry",
                "verbose_name_plural": "ledger entries",
            },
        ),
        migrations.RunPython(grant_export_ledger, revoke_export_ledger),
    ]
