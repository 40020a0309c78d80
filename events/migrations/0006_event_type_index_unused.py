"""The events' (type, created_at) index goes: no query of ours reads it, and every movement wrote it twice.

The feed reads a user's stream (`event_sequence_unique_per_stream`), the
webhook worker the undispatched ones (`event_not_dispatched`), and the admin
lists and filters by type newest first by the primary key (time-ordered ids).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("events", "0005_dashboard_indexes")]

    operations = [migrations.RemoveIndex(model_name="event", name="event_type_created")]
