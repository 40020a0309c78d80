"""The two back-office groups of the admin.

* **Support** sees everything and changes nothing but voiding holds (which
  releases reserved money to its owner and moves none) and sending a webhook
  delivery again (which tells its owner again what already happened).
* **Finance** sees everything and may adjust balances, freeze wallets, add
  exchange rates, refund payments, void holds, redeliver webhooks and manage
  loyalty programmes — each of which goes through the services, so money
  still moves only by ledger entries.

Permissions are normally created by a post_migrate signal, after every
migration has run; they are created here first so that the groups can be
given them in the same `migrate`.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

BACK_OFFICE_APPS = ("accounts", "wallets", "transactions", "events", "loyalty", "backoffice")

# Every permission a later migration gave a group is listed here too: those migrations call this function again
# to grant their models' view permissions, and it sets each group's permissions to exactly these lists.
SUPPORT_PERMISSIONS = (
    ("transactions", "void_hold"),
    ("events", "redeliver_webhookdelivery"),
    ("mfa", "reset_mfa"),
)
FINANCE_PERMISSIONS = (
    ("wallets", "adjust_balance"),
    ("wallets", "freeze_wallet"),
    ("wallets", "add_exchangerate"),
    ("transactions", "refund_payment"),
    ("transactions", "void_hold"),
    ("events", "redeliver_webhookdelivery"),
    ("loyalty", "add_loyaltyprogram"),
    ("loyalty", "change_loyaltyprogram"),
    ("transactions", "export_ledger"),
    ("mfa", "reset_mfa"),
)


def create_back_office_groups(apps, schema_editor):
    """Create (or bring up to date) the Support and Finance groups; safe to run again."""
    using = schema_editor.connection.alias if schema_editor is not None else "default"
    for app_config in apps.get_app_configs():
        # Migration-state app configs have no models module; create_permissions skips those.
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = models_module

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    view_permissions = list(
        permission_model.objects.using(using).filter(
            content_type__app_label__in=BACK_OFFICE_APPS, codename__startswith="view_"
        )
    )

    def existing(permissions):  # type: ignore[no-untyped-def]
        # A permission of a model a later migration creates is granted when that migration calls this again.
        return [
            permission
            for app_label, codename in permissions
            for permission in permission_model.objects.using(using).filter(
                content_type__app_label=app_label, codename=codename
            )
        ]

    support, _ = group_model.objects.using(using).get_or_create(name="Support")
    support.permissions.set(view_permissions + existing(SUPPORT_PERMISSIONS))
    finance, _ = group_model.objects.using(using).get_or_create(name="Finance")
    finance.permissions.set(view_permissions + existing(FINANCE_PERMISSIONS))


def delete_back_office_groups(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    group_model.objects.using(schema_editor.connection.alias).filter(name__in=["Support", "Finance"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("wallets", "0003_permissions"),
        ("transactions", "0003_permissions"),
    ]

    operations = [
        migrations.RunPython(create_back_office_groups, delete_back_office_groups),
    ]
