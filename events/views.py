"""The events feed: `GET /api/v1/events/` (oldest first, after a cursor) and `GET /api/v1/events/{id}/`."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import pagination, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from events import selectors
from events.feed import render_event, render_events
from events.serializers import EventOutputSerializer, EventQuerySerializer
from wallet_project.replicas.reads import replica_reads
from wallet_project.schema import error_responses, response_example, success
from wallets.views import UUID_LOOKUP

EVENT_EXAMPLE = {
    "id": "01938f2b-0a11-7c3e-8d4f-5a6b7c8d9e0f",
    "type": "movement.created",
    "created_at": "2026-12-05T10:00:00.123456Z",
    "sequence": 42,
    "data": {
        "reference": "c2b1f0de-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
        "entries": [
            {
                "id": "7a1d1c7e-2f7b-4a7e-8c53-6a0e4c1b9f10",
                "wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
                "wallet_id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
                "currency": "USD",
                "type": "DEPOSIT",
                "amount": "100.00",
                "balance_after": "225.50",
                "sequence": 7,
                "related_wallet_balance_id": None,
                "exchange_rate": None,
                "reference": "c2b1f0de-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
                "source": "API",
                "description": "",
                "merchant": "",
                "created_at": "2026-12-05T10:00:00.123400Z",
            }
        ],
    },
}


class FeedPagination(pagination.BasePagination):
    """`{next, results}`: oldest first, and `next` starts after the page's last event (`after`)."""

    def page(self, request: Request) -> Response:
        query = EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page_size = query.validated_data["page_size"]
        events = selectors.event_feed(
            user=request.user,
            after=query.validated_data.get("after"),
            types=query.validated_data["type"],
            limit=page_size + 1,
        )
        page = events[:page_size]
        following = None
        if len(events) > page_size:
            following = replace_query_param(request.build_absolute_uri(), "after", str(page[-1].pk))
        return Response({"next": following, "results": render_events(page)})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page (`after` = this page's last event), or null when none is left.",
                    "example": "https://wallet.example.com/api/v1/events/?after=01938f2b-0a11-7c3e-8d4f-5a6b7c8d9e0f",
                },
                "results": schema,
            },
        }


@extend_schema(tags=["events"])
@extend_schema_view(
    list=extend_schema(
        summary="My events",
        description="What happened to your wallets, balances, holds and money, oldest first: page after page "
        "with `after` (an event id; follow `next`). Events are written in the same database transaction as "
        "the change they tell of, so each committed change has exactly one and a rolled-back one none; "
        "`sequence` has no gap, so a consumer can tell what it missed. An `after` that is not one of your "
        "events answers 400.",
        parameters=[EventQuerySerializer],
        responses={
            200: success(EventOutputSerializer(many=True), "A page of your events, oldest first."),
            **error_responses(400, 401, 429, 503, invalid={"type": ['"card.*" is not a valid choice.']}),
        },
        examples=[
            response_example(
                {
                    "next": "https://wallet.example.com/api/v1/events/?after=01938f2b-0a11-7c3e-8d4f-5a6b7c8d9e0f",
                    "results": [EVENT_EXAMPLE],
                },
                "Events",
            )
        ],
    ),
    retrieve=extend_schema(
        summary="One of my events",
        description="One event; another user's answers 404.",
        responses={200: success(EventOutputSerializer, "The event."), **error_responses(401, 404, 429, 503)},
        examples=[response_example(EVENT_EXAMPLE, "Event")],
    ),
)
class EventViewSet(viewsets.GenericViewSet):
    serializer_class = EventOutputSerializer
    pagination_class = FeedPagination
    lookup_value_regex = UUID_LOOKUP

    @replica_reads  # the feed tolerates a replica's lag: a replica replays commits in order, so it has no gap either
    def list(self, request: Request) -> Response:
        return FeedPagination().page(request)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(render_event(selectors.event_get(user=request.user, event_id=UUID(pk))))
