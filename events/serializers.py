"""The events feed's query and answer shapes."""

from __future__ import annotations

from rest_framework import serializers

from events.models import EventType
from wallet_project.fields import QuerySerializer, StrictUUIDField
from wallet_project.pagination import DEFAULT_PAGE_SIZE, PageSizeField

# What a user's feed can hold: every type but the staff's.
USER_TYPES = [kind for kind in EventType.values if kind != EventType.RATE_CHANGED]
TYPE_FILTERS = [*USER_TYPES, *sorted({f"{kind.split('.')[0]}.*" for kind in USER_TYPES})]


class EventQuerySerializer(QuerySerializer):
    repeated = ("type",)

    after = StrictUUIDField(
        required=False, help_text="An event id from this feed: the page starts after it. Omitted: from the first."
    )
    type = serializers.ListField(
        child=serializers.ChoiceField(choices=TYPE_FILTERS),
        required=False,
        default=list,
        help_text="Repeatable: only these types; `movement.*` style prefixes match a family.",
    )
    page_size = PageSizeField(required=False, default=DEFAULT_PAGE_SIZE, help_text="Events per page: 1 to 200.")


class EventOutputSerializer(serializers.Serializer):
    """Something that happened to your wallets. `sequence` numbers your events 1, 2, 3 … with no gap, in the
    order they were committed; `id` is also the `webhook-id` of its deliveries."""

    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=USER_TYPES)
    created_at = serializers.DateTimeField()
    sequence = serializers.IntegerField(min_value=1)
    data = serializers.DictField(
        help_text="For `movement.created`: `{reference, entries}`, the ledger entries the movement booked on "
        "your balances. For `hold.*`: the hold; `wallet.*`: the wallet; `balance.created`: the balance; "
        "`user.mfa_enabled` and `user.mfa_disabled`: your second factor (`{enabled, methods, "
        "recovery_codes_left}`); each as the API rendered it when the event happened."
    )
