"""The API documentation: the OpenAPI document, Swagger UI (served by us, no CDN) and ReDoc.

Every operation under /api/v1/ must carry a summary, a description, one tag per
app, examples for its bodies, and its error responses in the contract's shape.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from wallet_project.money import AmountError, parse_amount

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
TAGS = {"auth", "wallets", "transactions", "holds", "events", "webhooks", "loyalty"}
ERROR_REF = "#/components/schemas/Error"
# Operations that need no access token.
ANONYMOUS = {
    ("post", "/api/v1/auth/register/"),
    ("post", "/api/v1/auth/token/"),
    ("post", "/api/v1/auth/token/refresh/"),
    ("post", "/api/v1/auth/token/mfa/"),
}
MOVEMENTS = {
    ("post", "/api/v1/transactions/deposit/"),
    ("post", "/api/v1/transactions/withdraw/"),
    ("post", "/api/v1/transactions/payment/"),
    ("post", "/api/v1/transactions/transfer/"),
    ("post", "/api/v1/transactions/batch/"),
    ("post", "/api/v1/transactions/{id}/refund/"),
}
CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:500]
    return response.json()


def _operations(schema):
    operations = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    assert len(operations) >= 20
    return operations


def _json_content(response):
    return response.get("content", {}).get("application/json", {})


def _has_example(media):
    return bool(media.get("examples") or "example" in media)


def test_every_operation_has_a_summary_a_description_and_one_app_tag(schema):
    for method, path, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("summary", "").strip(), where
        assert operation.get("description", "").strip(), where
        assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in TAGS, (where, operation.get("tags"))


def test_tags_group_operations_by_app(schema):
    expected = {
        "/api/v1/auth/": "auth",
        "/api/v1/wallets/": "wallets",
        "/api/v1/balances/": "wallets",
        "/api/v1/currencies/": "wallets",
        "/api/v1/rates/": "wallets",
        "/api/v1/transactions/": "transactions",
        "/api/v1/holds/": "holds",
        "/api/v1/events/": "events",
        "/api/v1/loyalty/": "loyalty",
        "/api/v1/webhook-endpoints/": "webhooks",
    }
    for method, path, operation in _operations(schema):
        prefix = next(prefix for prefix in expected if path.startswith(prefix))
        assert operation["tags"] == [expected[prefix]], f"{method.upper()} {path}"
    assert {tag["name"] for tag in schema["tags"]} == TAGS


def test_every_success_response_with_a_body_has_an_example(schema):
    for method, path, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        successes = {status: response for status, response in operation["responses"].items() if status.startswith("2")}
        assert successes, where
        for status, response in successes.items():
            media = _json_content(response)
            if status in {"204", "205"}:
                assert not media, f"{where} {status} has no body"
                continue
            assert _has_example(media), f"{where} {status}"


def test_every_request_body_has_an_example(schema):
    for method, path, operation in _operations(schema):
        body = operation.get("requestBody")
        if body is None:
            continue
        media = _json_content(body)
        assert media, f"{method.upper()} {path} takes JSON"
        assert _has_example(media), f"{method.upper()} {path}"


def test_every_error_response_has_the_error_shape(schema):
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                media = _json_content(response)
                where = f"{method.upper()} {path} {status}"
                assert media.get("schema", {}).get("$ref") == ERROR_REF, where
                assert response.get("description", "").strip(), where
                for example in media.get("examples", {}).values():
                    assert set(example["value"]) == {"error"}, where
                    assert set(example["value"]["error"]) == {"code", "message", "details"}, where
    error = schema["components"]["schemas"]["Error"]
    body = schema["components"]["schemas"][error["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]
    assert set(body["properties"]) == {"code", "message", "details"}


def test_errors_every_operation_can_give_are_documented(schema):
    for method, path, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        documented = set(operation["responses"])
        # DRF's throttles apply everywhere; the database can be down everywhere.
        assert {"429", "503"} <= documented, where
        if (method, path) not in ANONYMOUS:
            assert "401" in documented, where
        if "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert "400" in documented, where
        if "{id}" in path:
            assert "404" in documented, where
        if (method, path) in MOVEMENTS:
            assert {"400", "401", "404", "409", "422", "429", "503"} <= documented, where


def test_error_codes_are_named(schema):
    responses = schema["paths"]["/api/v1/transactions/transfer/"]["post"]["responses"]
    codes_422 = {
        e["value"]["error"]["code"] for e in responses["422"]["content"]["application/json"]["examples"].values()
    }
    assert {"insufficient_funds", "same_balance", "rate_unavailable", "wallet_frozen"} <= codes_422
    codes_429 = {
        e["value"]["error"]["code"] for e in responses["429"]["content"]["application/json"]["examples"].values()
    }
    assert codes_429 == {"lock_timeout", "throttled"}
    assert "idempotency_in_progress" in responses["409"]["description"]


def test_list_examples_are_shaped_like_the_lists(schema):
    def example(path):
        media = _json_content(schema["paths"][path]["get"]["responses"]["200"])
        return next(iter(media["examples"].values()))["value"]

    assert set(example("/api/v1/wallets/")) == {"count", "next", "previous", "results"}
    assert set(example("/api/v1/transactions/")) == {"next", "previous", "results"}
    assert isinstance(example("/api/v1/currencies/"), list)
    assert isinstance(example("/api/v1/rates/"), list)
    entry = example("/api/v1/transactions/")["results"][0]
    assert re.fullmatch(r"\d+\.\d{2}", entry["amount"]) and isinstance(entry["amount"], str)


def test_authenticated_operations_use_the_bearer_jwt_scheme(schema):
    schemes = schema["components"]["securitySchemes"]
    bearer = [
        name
        for name, scheme in schemes.items()
        if {key: scheme.get(key) for key in ("type", "scheme", "bearerFormat")}
        == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    ]
    assert bearer, schemes
    for method, path, operation in _operations(schema):
        if (method, path) in ANONYMOUS:
            continue
        names = {name for requirement in operation.get("security", []) for name in requirement}
        assert names & set(bearer), f"{method.upper()} {path}"


def _local_assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))["']""", html)


def test_swagger_ui_is_served_from_this_server(client):
    response = client.get("/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    for host in CDN_HOSTS:
        assert host not in html
    assets = _local_assets(html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    assert any(asset.endswith(".css") for asset in assets), assets
    for asset in assets:
        url = urlparse(asset)
        assert not url.netloc, asset  # same origin
        assert url.path.startswith("/static/"), asset
        served = client.get(url.path)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content if served.streaming else [served.content]), asset


def test_swagger_ui_points_at_the_schema(client):
    html = client.get("/docs/", HTTP_ACCEPT="text/html").content.decode()
    assert "/api/schema/" in html


def test_redoc_is_served(client):
    response = client.get("/redoc/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    # Its script comes from this server, like everything else it loads.
    scripts = re.findall(r"""<script[^>]+src=["']([^"']+)["']""", html)
    assert any("redoc" in script for script in scripts), scripts
    for script in scripts:
        url = urlparse(script)
        assert not url.netloc, script
        assert client.get(url.path).status_code == 200, script


def test_schema_is_served_as_yaml_too(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi:" in response.content


# --- what a reader of the documentation sees --------------------------------------------

# Words of our implementation that have no place in a client's documentation.
INTERNAL_NOTES = re.compile(
    r"fast.path|PERFORMANCE\.md|ARCHITECTURE\.md|\bchange \d+|_book\b|\bSQL\b|select_for_update|"
    r"\bLua\b|EVALSHA|BLPOP|\bDRF\b|machinery|module docstring|serializer|quick_input",
    re.IGNORECASE,
)
# Hosts a docs page would load fonts, scripts or images from.
EXTERNAL_ASSET_HOSTS = (*CDN_HOSTS, "fonts.gstatic.com", "cdn.redoc.ly", "validator.swagger.io")


def test_every_success_response_says_what_it_is(schema):
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                assert response.get("description", "").strip(), f"{method.upper()} {path} {status}"


def test_movements_declare_the_idempotency_headers(schema):
    for method, path in MOVEMENTS:
        operation = schema["paths"][path][method]
        where = f"{method.upper()} {path}"
        key = next(p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key")
        assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}, where
        for status in ("201", "422"):
            replayed = operation["responses"][status].get("headers", {}).get("Idempotent-Replayed")
            assert replayed is not None, f"{where} {status}"
            assert replayed["schema"]["enum"] == ["true"], where
            assert "Idempotency-Key" in replayed["description"], where


def test_the_authorize_dialog_says_where_the_token_comes_from(schema):
    (scheme,) = schema["components"]["securitySchemes"].values()
    assert "POST /api/v1/auth/token/" in scheme["description"]
    assert "Bearer" in scheme["description"]
    assert "POST /api/v1/auth/token/" in schema["info"]["description"]


def test_no_internal_notes_in_the_documentation(schema):
    texts = []

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"description", "summary", "title"} and isinstance(value, str):
                    texts.append(value)
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(schema)
    assert len(texts) > 100
    leaks = [text for text in texts if INTERNAL_NOTES.search(text)]
    assert not leaks, leaks


def _foreign_urls(text: str) -> list[str]:
    urls = re.findall(r"""https?://[^\s"'<>)]+""", text)
    return [url for url in urls if urlparse(url).hostname not in {"testserver", "localhost", "127.0.0.1"}]


@pytest.mark.parametrize("page", ["/redoc/", "/docs/"])
def test_docs_pages_name_no_other_host(client, page):
    html = client.get(page, HTTP_ACCEPT="text/html").content.decode()

    assert _foreign_urls(html) == []


def test_redoc_is_themed_with_the_system_fonts(client):
    html = client.get("/redoc/", HTTP_ACCEPT="text/html").content.decode()

    assert "fonts.googleapis.com" not in html
    assert "system-ui" in html


def test_redoc_page_may_load_nothing_from_another_host(client):
    """ReDoc's own bundle draws a logo from cdn.redoc.ly: the bundle served here does not, and the policy forbids it."""
    response = client.get("/redoc/", HTTP_ACCEPT="text/html")
    policy = dict(directive.strip().split(" ", 1) for directive in response["Content-Security-Policy"].split(";"))

    assert policy["default-src"] == "'self'"
    for directive in ("img-src", "font-src", "connect-src", "style-src", "script-src"):
        sources = policy[directive].split()
        assert not [source for source in sources if "." in source or source in {"*", "https:", "http:"}], directive
    bundle_url = re.search(r"""<script[^>]+src=["']([^"']+redoc[^"']*)["']""", response.content.decode())[1]
    served = client.get(urlparse(bundle_url).path)
    assert served.status_code == 200
    assert served["Content-Type"].startswith("application/javascript")
    bundle = b"".join(served.streaming_content if served.streaming else [served.content]).decode()
    assert "Redoc" in bundle and len(bundle) > 100_000
    assert [host for host in EXTERNAL_ASSET_HOSTS if host in bundle] == []


# Spellings of positive amounts within the limits: zero, too many decimals or more than 10^15 are
# refused by value, which a pattern cannot say (the description does).
SPELLINGS = ["12.50", "0.01", "7", "+7", "7.", ".5", "1E1", "1e+2", "2.5e-1", " 7.25 ", "\t5\n", "-5", "", "."]
SPELLINGS += ["1e", "1.2.3", "0x10", "1,5", "NaN", "Infinity", "١٠", "１０", "1٠", "\u00a010", "10\u2007", "1 0"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_documented_amount_pattern_admits_exactly_the_amounts_the_service_reads(schema, spelling):
    components = schema["components"]["schemas"]
    documented = {
        component["properties"][name].get("pattern")
        for component in components.values()
        for name in ("amount", "initial_amount")
        if name in component.get("properties", {})
    }
    documented.discard(None)  # the responses' amounts are written by the service, not read
    assert len(documented) == 1, documented
    # Only ASCII classes in it, so ECMA-262 (the document's dialect) and Python read it alike.
    pattern = re.compile(documented.pop(), re.ASCII)
    try:
        parse_amount(spelling)
        read = True
    except AmountError:
        read = False

    assert bool(pattern.search(spelling)) == read, (spelling, pattern.pattern)


def test_creating_a_hold_links_to_the_operations_that_take_its_id(schema):
    links = schema["paths"]["/api/v1/holds/"]["post"]["responses"]["201"]["links"]
    operations = {
        operation["operationId"]: (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }

    assert {link["operationId"] for link in links.values()} == {
        "api_v1_holds_retrieve",
        "api_v1_holds_capture_create",
        "api_v1_holds_void_create",
    }
    for link in links.values():
        path, _ = operations[link["operationId"]]
        assert "{id}" in path
        assert link["parameters"] == {"id": "$response.body#/id"}


def test_registering_a_webhook_endpoint_links_to_the_operations_that_take_its_id(schema):
    links = schema["paths"]["/api/v1/webhook-endpoints/"]["post"]["responses"]["201"]["links"]

    assert {link["operationId"] for link in links.values()} == {
        "api_v1_webhook_endpoints_retrieve",
        "api_v1_webhook_endpoints_partial_update",
        "api_v1_webhook_endpoints_destroy",
        "api_v1_webhook_endpoints_rotate_secret_create",
        "api_v1_webhook_endpoints_deliveries_list",
    }


def test_webhook_event_types_are_documented_as_the_choices_they_are(schema):
    body = schema["components"]["schemas"]["WebhookEndpointCreateInputRequest"]
    event_types = body["properties"]["event_types"]
    choices = schema["components"]["schemas"][event_types["items"]["$ref"].rsplit("/", 1)[-1]]["enum"]

    assert event_types["minItems"] == 1
    assert {"movement.created", "hold.*", "*"} <= set(choices)
    assert "rate.changed" not in choices
    assert body["properties"]["url"]["pattern"] == "^https://"
    codes = schema["paths"]["/api/v1/webhook-endpoints/"]["post"]["responses"]["422"]["content"]["application/json"]
    assert [example["value"]["error"]["code"] for example in codes["examples"].values()] == [
        "too_many_webhook_endpoints"
    ]


def test_the_login_documents_both_of_its_answers_and_links_the_second_step(schema):
    operation = schema["paths"]["/api/v1/auth/token/"]["post"]
    answer = operation["responses"]["200"]
    media = _json_content(answer)
    names = {ref["$ref"].rsplit("/", 1)[-1] for ref in schema["components"]["schemas"]["LoginAnswer"]["oneOf"]}
    examples = [example["value"] for example in media["examples"].values()]

    assert media["schema"]["$ref"].endswith("/LoginAnswer")
    assert names == {"TokenPairOutput", "MfaChallengeOutput"}
    assert {frozenset(example) for example in examples} == {
        frozenset({"access", "refresh"}),
        frozenset({"mfa_required", "mfa_token", "methods"}),
    }
    assert answer["links"]["CompleteLoginWithCode"] == {
        "operationId": "api_v1_auth_token_mfa_create",
        "requestBody": {"mfa_token": "$response.body#/mfa_token"},
    }
    assert schema["paths"]["/api/v1/auth/mfa/totp/"]["post"]["responses"]["201"]["links"]["ConfirmApp"] == {
        "operationId": "api_v1_auth_mfa_totp_confirm_create"
    }


@pytest.mark.parametrize(
    ("path", "step_up"),
    [
        ("/api/v1/transactions/withdraw/", True),
        ("/api/v1/transactions/payment/", True),
        ("/api/v1/transactions/transfer/", True),
        ("/api/v1/transactions/batch/", True),
        ("/api/v1/holds/", True),
        ("/api/v1/transactions/deposit/", False),
    ],
)
def test_the_movements_that_may_need_a_second_factor_document_mfa_required(schema, path, step_up):
    responses = schema["paths"][path]["post"]["responses"]

    if not step_up:
        assert "403" not in responses
        return
    codes = {example["value"]["error"]["code"] for example in _json_content(responses["403"])["examples"].values()}
    assert codes == {"mfa_required"}
    assert "`mfa_required`" in schema["paths"][path]["post"]["description"]


def test_the_second_factor_endpoints_document_their_conflicts(schema):
    conflicts = {
        ("post", "/api/v1/auth/mfa/totp/"): {"mfa_already_enabled"},
        ("post", "/api/v1/auth/mfa/totp/confirm/"): {"mfa_already_enabled"},
        ("delete", "/api/v1/auth/mfa/totp/"): {"mfa_not_enabled"},
        ("post", "/api/v1/auth/mfa/recovery-codes/"): {"mfa_not_enabled"},
    }
    for (method, path), expected in conflicts.items():
        media = _json_content(schema["paths"][path][method]["responses"]["409"])
        assert {example["value"]["error"]["code"] for example in media["examples"].values()} == expected, path
