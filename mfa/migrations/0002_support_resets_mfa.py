"""Support may reset a user's two-factor authentication in the back office (`mfa.reset_mfa`), and so may Finance,
whose rights include Support's."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

RESET_GROUPS = ("Support", "Finance")


def grant_reset_mfa(apps, schema_editor):
    """Give `mfa.reset_mfa` to the groups that may reset; safe to run again."""
    using = schema_editor.connection.alias if schema_editor is not None else "default"
    app_config = apps.get_app_config("mfa")
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
        .get(content_type__app_label="mfa", codename="reset_mfa")
    )
    for group in apps.get_model("auth", "Group").objects.using(using).filter(name__in=RESET_GROUPS):
        group.permissions.add(permission)


def revoke_reset_mfa(apps, schema_editor):
    apps.get_model("auth", "Permission").objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="mfa", codename="reset_mfa"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mfa", "0001_initial"),
        ("accounts", "0002_back_office_groups"),
    ]

    operations = [
        migrations.RunPython(grant_reset_mfa, revoke_reset_mfa),
    ]
