"""The staff-action history, readable by the Support and Finance groups of the back office."""

import importlib
import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def grant_view_to_back_office_groups(apps, schema_editor):
    """Bring the Support and Finance groups up to date: both read every back-office model, this one too."""
    groups = importlib.import_module("accounts.migrations.0002_back_office_groups")
    groups.create_back_office_groups(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_back_office_groups"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("wallets", "0003_permissions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StaffAction",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("rate_set", "Exchange rate set"),
                            ("balance_adjusted", "Balance adjusted"),
                            ("refund", "Payment refunded"),
                            ("wallet_frozen", "Wallet frozen"),
                            ("wallet_unfrozen", "Wallet unfrozen"),
                        ],
                        max_length=32,
                    ),
                ),
                ("target_id", models.CharField(max_length=64)),
                ("target_repr", models.CharField(max_length=200)),
                ("reason", models.CharField(max_length=255)),
                ("details", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "staff",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "target_type",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="contenttypes.contenttype"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "id"],
                "indexes": [
                    models.Index(fields=["staff", "-created_at"], name="staffaction_staff_created"),
                    models.Index(fields=["action", "-created_at"], name="staffaction_action_created"),
                    models.Index(fields=["target_type", "target_id"], name="staffaction_target"),
                ],
            },
        ),
        migrations.RunPython(grant_view_to_back_office_groups, migrations.RunPython.noop),
    ]
