"""The frozen wallets, for the back office's dashboard: a partial index of those rows alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("wallets", "0007_staff_action_mfa_reset")]

    operations = [
        migrations.AddIndex(
            model_name="wallet",
            index=models.Index(
                condition=models.Q(("is_frozen", True)), fields=["-created_at", "-id"], name="wallet_frozen_newest"
            ),
        ),
    ]
