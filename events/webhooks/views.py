"""The `/api/v1/webhook-endpoints/` endpoints: register, list, read, change, delete, rotate the secret, and
list an endpoint's deliveries with their attempts.

Thin: an input serializer validates, one service or selector call does the work, the endpoint is rendered by
hand (`endpoint_representation`). Another user's endpoint answers 404.
"""

from __future__ import annotations

from http import HTTPStatus
from uuid import UUID

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from events.webhooks import selectors, services
from events.webhooks.serializers import (
    WebhookDeliveryOutputSerializer,
    WebhookDeliveryQuerySerializer,
    WebhookEndpointCreateInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointUpdateInputSerializer,
    WebhookEndpointWithSecretOutputSerializer,
    deliveries_representation,
    endpoint_representation,
)
from events.webhooks.services import MAX_ENDPOINTS_PER_USER
from wallet_project.pagination import CURSOR_PARAMETERS, HistoryCursorPagination
from wallet_project.schema import error_responses, request_example, response_example, success
from wallets.views import UUID_LOOKUP

ENDPOINT_EXAMPLE = {
    "id": "01938f3b-2a4c-7e1d-8f20-3b4c5d6e7f80",
    "url": "https://hooks.example.com/wallet",
    "description": "Bookkeeping",
    "event_types": ["movement.created", "hold.*"],
    "is_enabled": True,
    "disabled_reason": None,
    "previous_secret_expires_at": None,
    "created_at": "2026-12-05T10:00:00.123456Z",
    "updated_at": "2026-12-05T10:00:00.123456Z",
}
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5ZmN0y8nGWs="
DELIVERY_EXAMPLE = {
    "id": "01938f3c-5d6e-7f80-9a1b-2c3d4e5f6a7b",
    "event_id": "01938f3c-5d60-7a1b-8c2d-3e4f5a6b7c8d",
    "event_type": "movement.created",
    "status": "pending",
    "next_attempt_at": "2026-12-05T10:05:05.000000Z",
    "created_at": "2026-12-05T10:00:01.000000Z",
    "delivered_at": None,
    "attempts": [
        {
            "number": 1,
            "attempted_at": "2026-12-05T10:00:01.200000Z",
            "status_code": 500,
            "duration_ms": 84,
            "error": None,
        },
        {
            "number": 2,
            "attempted_at": "2026-12-05T10:00:06.400000Z",
            "status_code": None,
            "duration_ms": 10002,
            "error": "No answer within 10 s.",
        },
    ],
}
BAD_URL = {"url": ["The URL must start with https://."]}
_DELIVERY = (
    " Each event is POSTed as JSON `{id, type, created_at, sequence, data}` (the events feed's shape) with the "
    "Standard Webhooks headers `webhook-id` (the event's id: deduplicate by it, delivery is at least once and "
    "not ordered), `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 with the secret). Any 2xx within 10 "
    "seconds delivers it; anything else (redirects are not followed) is retried after about 5 s, 5 min, 30 min, "
    "2 h, 5 h, 10 h and 10 h. An endpoint whose every attempt has failed for 3 days is disabled."
)
_URL_RULES = (
    " The URL must be https, and its host must resolve only to public addresses (not loopback, private, "
    "link-local or metadata addresses); it is checked again, after resolving the name, at every delivery."
)


@extend_schema(tags=["webhooks"])
@extend_schema_view(
    list=extend_schema(
        summary="My webhook endpoints",
        description="The caller's webhook endpoints, oldest first, paginated by `page` (and `page_size`, at "
        "most 200): `{count, next, previous, results}`. Secrets are never shown here.",
        responses={
            200: success(WebhookEndpointOutputSerializer(many=True), "A page of the caller's endpoints."),
            **error_responses(400, 401, 429, 503, invalid={"page": ["Invalid page."]}),
        },
        examples=[response_example(ENDPOINT_EXAMPLE, "Endpoints")],
    ),
    retrieve=extend_schema(
        summary="One of my webhook endpoints",
        description="The endpoint, without its secret; another user's endpoint answers 404.",
        responses={
            200: success(WebhookEndpointOutputSerializer, "The endpoint."),
            **error_responses(401, 404, 429, 503),
        },
        examples=[response_example(ENDPOINT_EXAMPLE, "Endpoint")],
    ),
)
class WebhookEndpointViewSet(viewsets.GenericViewSet):
    serializer_class = WebhookEndpointOutputSerializer
    lookup_value_regex = UUID_LOOKUP

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.webhook_endpoint_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([endpoint_representation(endpoint) for endpoint in page])

    def retrieve(self, request: Request, pk: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(user=request.user, endpoint_id=UUID(pk))
        return Response(endpoint_representation(endpoint))

    @extend_schema(
        summary="Register a webhook endpoint",
        description="The events of `event_types` that happen to you from now on are POSTed to `url`. The answer "
        "carries the signing `secret`, shown only here: keep it to verify the signatures. At most "
        f"{MAX_ENDPOINTS_PER_USER} endpoints per user (422 `too_many_webhook_endpoints`)." + _URL_RULES + _DELIVERY,
        request=WebhookEndpointCreateInputSerializer,
        responses={
            201: success(WebhookEndpointWithSecretOutputSerializer, "Created: the endpoint and its secret."),
            **error_responses(
                400, 401, 413, 422, 429, 503, codes={422: ["too_many_webhook_endpoints"]}, invalid=BAD_URL
            ),
        },
        examples=[
            request_example(
                {
                    "url": "https://hooks.example.com/wallet",
                    "event_types": ["movement.created", "hold.*"],
                    "description": "Bookkeeping",
                }
            ),
            response_example({**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}, "Created", status=201),
        ],
    )
    def create(self, request: Request) -> Response:
        serializer = WebhookEndpointCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(user=request.user, **serializer.validated_data)
        return Response(endpoint_representation(endpoint, with_secret=True), status=HTTPStatus.CREATED)

    @extend_schema(
        summary="Change a webhook endpoint",
        description="Changes the fields sent: `url`, `event_types`, `description`, `is_enabled`. Disabling "
        "stops deliveries (the pending ones wait); enabling resumes them, also after an automatic disabling."
        + _URL_RULES,
        request=WebhookEndpointUpdateInputSerializer,
        responses={
            200: success(WebhookEndpointOutputSerializer, "The endpoint as it is now."),
            **error_responses(400, 401, 404, 413, 429, 503, invalid=BAD_URL),
        },
        examples=[
            request_example({"event_types": ["*"], "is_enabled": True}, "Everything, enabled again"),
            response_example({**ENDPOINT_EXAMPLE, "event_types": ["*"]}, "Changed"),
        ],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        serializer = WebhookEndpointUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            user=request.user, endpoint_id=UUID(pk), **serializer.validated_data
        )
        return Response(endpoint_representation(endpoint))

    @extend_schema(
        summary="Delete a webhook endpoint",
        description="Deletes the endpoint and its deliveries; nothing more is sent to it.",
        responses={
            204: OpenApiResponse(description="Deleted."),
            **error_responses(401, 404, 429, 503),
        },
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.webhook_endpoint_delete(user=request.user, endpoint_id=UUID(pk))
        return Response(status=HTTPStatus.NO_CONTENT)

    @extend_schema(
        summary="Rotate a webhook endpoint's secret",
        description="Makes a new signing secret, shown only in this answer. For 24 hours the old secret keeps "
        "signing beside the new one (`webhook-signature` carries both signatures, space-separated), so that "
        "receivers can switch without refusing a delivery; then only the new one signs.",
        request=None,
        responses={
            200: success(WebhookEndpointWithSecretOutputSerializer, "The endpoint and its new secret."),
            **error_responses(401, 404, 429, 503),
        },
        examples=[
            response_example(
                {
                    **ENDPOINT_EXAMPLE,
                    "previous_secret_expires_at": "2026-12-06T10:00:00.123456Z",
                    "secret": SECRET_EXAMPLE,
                },
                "Rotated",
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = services.webhook_endpoint_rotate_secret(user=request.user, endpoint_id=UUID(pk))
        return Response(endpoint_representation(endpoint, with_secret=True))

    @extend_schema(
        summary="Deliveries of a webhook endpoint",
        operation_id="api_v1_webhook_endpoints_deliveries_list",
        description="The endpoint's deliveries, newest first, cursor-paginated (`page_size` at most 200), each "
        "with its attempts: the status code the receiver answered, how long it took, the error when there was "
        "no answer, and when the next attempt is due. `status` narrows the list.",
        parameters=[WebhookDeliveryQuerySerializer, *CURSOR_PARAMETERS],
        responses={
            200: success(WebhookDeliveryOutputSerializer(many=True), "A page of the endpoint's deliveries."),
            **error_responses(400, 401, 404, 429, 503, invalid={"status": ['"sent" is not a valid choice.']}),
        },
        examples=[response_example(DELIVERY_EXAMPLE, "Deliveries")],
    )
    @action(detail=True, methods=["get"], pagination_class=HistoryCursorPagination)
    def deliveries(self, request: Request, pk: str) -> Response:
        query = WebhookDeliveryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        deliveries = selectors.webhook_delivery_list(
            user=request.user, endpoint_id=UUID(pk), status=query.validated_data.get("status")
        )
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(deliveries_representation(page))
