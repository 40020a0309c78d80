"""The failed webhook deliveries, for the back office's dashboard: a partial index of those rows alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0004_event_type_loyalty_unfunded")]

    operations = [
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status", "failed")), fields=["-created_at"], name="webhookdelivery_failed"
            ),
        ),
    ]
