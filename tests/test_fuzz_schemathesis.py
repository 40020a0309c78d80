"""Fuzzing with schemathesis against our own OpenAPI document (a bounded run, in CI).

For every operation, generated requests (valid and invalid) must never get a
5xx, every error must be in the contract's shape, and every response must be
valid against the schema (status code documented, body matching its schema).
The caller owns a funded wallet, so that some generated requests reach the
money services; ids in paths are mostly random UUIDs and answer 404.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import UserFactory, WalletFactory, funded_balance

# A bounded run: CI can raise it with FUZZ_MAX_EXAMPLES.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))


@pytest.fixture(scope="session")
def wsgi_app():
    return get_wsgi_application()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Like Django's test client: a request must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db):
    user = UserFactory()
    funded_balance(amount="1000.00", wallet=WalletFactory(owner=user))
    return f"Bearer {RefreshToken.for_user(user).access_token}"


def _assert_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str), body
    assert isinstance(error.get("details"), dict), body


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_never_fails_and_answers_as_documented(mode, bearer, wsgi_app):
    # schemathesis's own pytest plugin does not run under pytest 9 yet, so the
    # operations are walked here, each with its own bounded hypothesis run.
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            response = case.call_and_validate(headers={"Authorization": bearer}, checks=checks)
            assert response.status_code < 500
            if response.status_code >= 400 and response.content:
                _assert_error_shape(response)

        fuzz()
