"""The API documentation: the OpenAPI document, Swagger UI (served by us, no CDN) and ReDoc.

Every operation under /api/v1/ must carry a summary, a description, one tag per
app, examples for its bodies, and its error responses in the contract's shape.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from conftest import seed_reference_data
from wallet_project.money import AmountError, parse_amount
from wallets.models import Currency

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
def schema(django_db_setup, django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        # The document lists the currencies of the table when it is made: those of the data migration (a
        # `transaction=True` test before this module may have flushed them).
        if not Currency.objects.filter(pk="USD").exists():
            seed_reference_data()
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


# Spellings of amounts: the patterns say every rule that does not depend on a currency (above zero, at most
# 10^15, at most 4 decimals that are not zero, no exponent), so they admit exactly what the parser reads.
SPELLINGS = ["12.50", "0.01", "7", "+7", "7.", ".5", "1E1", "1e+2", "2.5e-1", " 7.25 ", "\t5\n", "-5", "", "."]
SPELLINGS += ["1e", "1.2.3", "0x10", "1,5", "NaN", "Infinity", "١٠", "１０", "1٠", "\u00a010", "10\u2007", "1 0"]
SPELLINGS += ["0", "0.00", "-0", "+0.0", ".0001", ".00001", "0.00010", "1.23456", "1.23450000", "007.5"]
SPELLINGS += ["1000000000000000", "1000000000000000.0000", "1000000000000000.0001", "999999999999999.9999"]
SPELLINGS += ["10000000000000000", "00001000000000000000", "1000000000000001"]


def _documented_amounts(schema) -> dict[str, str]:
    """The string branch's pattern of each request amount, by field name."""
    patterns = {}
    for name, component in schema["components"]["schemas"].items():
        for field in ("amount", "initial_amount"):
            prop = component.get("properties", {}).get(field)
            if prop is not None and name.endswith("Request"):
                (text,) = [branch for branch in prop["anyOf"] if branch["type"] == "string"]
                patterns[f"{name}.{field}"] = text["pattern"]
    return patterns


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_documented_amount_patterns_admit_exactly_the_amounts_the_service_reads(schema, spelling):
    documented = _documented_amounts(schema)
    assert len(documented) >= 7, documented
    for where, source in documented.items():
        allow_zero = where.endswith(".initial_amount")
        # Only ASCII classes in it, so ECMA-262 (the document's dialect) and Python read it alike.
        pattern = re.compile(source, re.ASCII)
        try:
            parse_amount(spelling, allow_zero=allow_zero)
            read = True
        except AmountError:
            read = False

        assert bool(pattern.search(spelling)) == read, (where, spelling, pattern.pattern)


def test_amounts_are_a_decimal_string_or_a_json_number_in_range(schema):
    amount = schema["components"]["schemas"]["BalanceMovementInputRequest"]["properties"]["amount"]

    (number,) = [branch for branch in amount["anyOf"] if branch["type"] == "number"]
    assert number == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1000000000000000,
        "multipleOf": 0.0001,
    }


def test_opening_a_balance_says_which_decimals_each_known_currency_takes(schema):
    body = schema["components"]["schemas"]["BalanceCreateInputRequest"]
    known = dict(Currency.objects.values_list("code", "minor_unit"))

    assert body["properties"]["currency"]["enum"] == sorted(known)
    for branch in body["anyOf"]:
        codes = branch["properties"]["currency"]["enum"]
        (minor_unit,) = {known[code] for code in codes}
        amount = branch["properties"]["initial_amount"]
        (text,) = [option for option in amount["anyOf"] if option["type"] == "string"]
        (number,) = [option for option in amount["anyOf"] if option["type"] == "number"]
        finest = "0." + "0" * (minor_unit - 1) + "1" if minor_unit else "1"
        too_fine = "0." + "0" * minor_unit + "1"
        assert re.search(text["pattern"], finest) and not re.search(text["pattern"], too_fine), (codes, text)
        assert number["multipleOf"] == float(finest)
    assert sorted(code for branch in body["anyOf"] for code in branch["properties"]["currency"]["enum"]) == sorted(
        known
    )


def test_the_operations_that_create_money_objects_link_to_the_ones_that_use_them(schema):
    paths = schema["paths"]
    operations = {
        operation["operationId"]: operation
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }

    def links(method: str, path: str, status: str) -> dict[str, tuple[str, dict, dict]]:
        found = paths[path][method]["responses"][status]["links"]
        return {
            name: (link["operationId"], link.get("parameters", {}), link.get("requestBody", {}))
            for name, link in found.items()
        }

    wallet = links("post", "/api/v1/wallets/", "201")
    assert wallet["OpenBalance"] == ("api_v1_wallets_balances_create", {"id": "$response.body#/id"}, {})
    balance = links("post", "/api/v1/wallets/{id}/balances/", "201")
    new_balance = {"wallet_balance_id": "$response.body#/id"}
    assert balance["Deposit"] == ("api_v1_transactions_deposit_create", {}, new_balance)
    assert balance["Withdraw"] == ("api_v1_transactions_withdraw_create", {}, new_balance)
    assert balance["Pay"] == ("api_v1_transactions_payment_create", {}, new_balance)
    assert balance["PlaceHold"] == ("api_v1_holds_create", {}, new_balance)
    assert balance["TransferFrom"][2] == {"from_wallet_balance_id": "$response.body#/id"}
    hold = links("post", "/api/v1/holds/", "201")
    assert {hold[name][0] for name in ("GetHold", "CaptureHold", "VoidHold")} == {
        "api_v1_holds_retrieve",
        "api_v1_holds_capture_create",
        "api_v1_holds_void_create",
    }
    for path in ("deposit", "withdraw", "payment", "transfer"):
        entry = links("post", f"/api/v1/transactions/{path}/", "201")
        assert entry["GetTransaction"] == ("api_v1_transactions_retrieve", {"id": "$response.body#/id"}, {})
    capture = links("post", "/api/v1/holds/{id}/capture/", "201")
    assert capture["GetTransaction"][1] == {"id": "$response.body#/entry/id"}
    # Every link names an operation of the document, and a parameter or a body field it has.
    for item in paths.values():
        for operation in item.values():
            for response in operation.get("responses", {}).values() if isinstance(operation, dict) else ():
                for link in response.get("links", {}).values():
                    target = operations[link["operationId"]]
                    names = {parameter["name"] for parameter in target.get("parameters", [])}
                    assert set(link.get("parameters", {})) <= names, link
                    if link.get("requestBody"):
                        (media,) = target["requestBody"]["content"].values()
                        ref = media["schema"]["$ref"].rsplit("/", 1)[-1]
                        assert set(link["requestBody"]) <= set(schema["components"]["schemas"][ref]["properties"])


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
