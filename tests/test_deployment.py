"""Production settings: `check --deploy` is clean, and unsafe configurations refuse to start."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "MFA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "DATABASE_URL": os.environ["DATABASE_URL"],
    "REDIS_URL": os.environ["REDIS_URL"],
    "ALLOWED_HOSTS": "wallet.example.com",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in PRODUCTION and key not in {"JWT_SIGNING_KEY", "ADMIN_REQUIRE_MFA"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_settings_refuse_to_start_without_a_backing_service(missing):
    env = {key: value for key, value in PRODUCTION.items() if key != missing}

    result = _manage("check", **env)

    assert result.returncode != 0
    assert missing in result.stderr


def test_production_settings_refuse_the_development_secret_key():
    env = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}

    result = _manage("check", **env)

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_refuse_to_start_without_the_key_of_the_second_factors():
    env = {key: value for key, value in PRODUCTION.items() if key != "MFA_ENCRYPTION_KEY"}

    result = _manage("check", **env)

    assert result.returncode != 0
    assert "MFA_ENCRYPTION_KEY must be set" in result.stderr


def test_a_key_of_the_second_factors_that_is_not_a_fernet_key_is_refused():
    result = _manage("check", **{**PRODUCTION, "MFA_ENCRYPTION_KEY": "not-a-fernet-key"})

    assert result.returncode != 0
    assert "not a Fernet key" in result.stderr


def test_the_second_factor_is_asked_of_staff_by_default_in_production_and_not_in_development():
    code = "from django.conf import settings; print(settings.ADMIN_REQUIRE_MFA)"
    development = {**{key: value for key, value in PRODUCTION.items() if key != "MFA_ENCRYPTION_KEY"}, "DEBUG": "true"}

    production = _manage("shell", "--no-imports", "-c", code, **PRODUCTION)
    debug = _manage("shell", "--no-imports", "-c", code, **development)

    assert production.stdout.strip() == "True", production.stderr
    assert debug.stdout.strip() == "False", debug.stderr


def test_jwt_signing_key_can_be_set_apart_from_the_secret_key():
    code = "from django.conf import settings; print(settings.SIMPLE_JWT['SIGNING_KEY'] == settings.SECRET_KEY)"
    env = {**PRODUCTION, "JWT_SIGNING_KEY": secrets.token_urlsafe(32)}

    apart = _manage("shell", "--no-imports", "-c", code, **env)
    same = _manage("shell", "--no-imports", "-c", code, **PRODUCTION)

    assert apart.stdout.strip() == "False", apart.stderr
    assert same.stdout.strip() == "True", same.stderr


# --- signing keys anyone can read are refused ------------------------------------------------

# The compose file's and .env.example's former defaults: public, so anyone could sign tokens with them.
FORMER_DEFAULTS = [
    "compose-dev-default-INSECURE-change-me-in-.env-0123456789abcdefghij",
    "change-me-to-a-long-random-string-of-at-least-50-characters",
    "development-only-secret-key-do-not-use-in-production-0123456789",
]
_KEY_IN_TEXT = [
    # NAME=value, NAME: value, NAME = "value", "NAME": "value"
    re.compile(r"""SECRET_KEY["']?\s*[:=]\s*["']?([A-Za-z0-9_\-.+/=]{12,})"""),
    re.compile(r"""SIGNING_KEY["']?\s*[:=]\s*["']?([A-Za-z0-9_\-.+/=]{12,})"""),
    # ${NAME:-default} in the compose file
    re.compile(r"""\$\{[A-Z_]*KEY:?-([^}]+)\}"""),
]
# What those patterns also catch in code: a setting's name, or a call (`secrets.token_urlsafe(50)`).
_CODE = re.compile(r"^(?:[A-Z_]+|[A-Za-z_]+\.[A-Za-z_0-9]+)$")


def _keys_written_in_the_repository() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    keys: set[str] = set()
    for name in files:
        path = ROOT / name
        if path.suffix in {".png", ".json"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        for pattern in _KEY_IN_TEXT:
            keys.update(match for match in pattern.findall(text) if not _CODE.match(match))
    return keys


def test_every_key_written_in_the_repository_is_refused_in_production():
    from wallet_project.settings import PUBLISHED_SECRET_KEYS, unsafe_key

    written = _keys_written_in_the_repository() | set(FORMER_DEFAULTS) | PUBLISHED_SECRET_KEYS

    assert "development-only-secret-key-do-not-use-in-production-0123456789" in written  # the scan finds keys
    for key in written:
        assert unsafe_key("SECRET_KEY", key, min_length=50), key
        assert unsafe_key("JWT_SIGNING_KEY", key, min_length=32), key
    assert unsafe_key("SECRET_KEY", secrets.token_urlsafe(50), min_length=50) is None


@pytest.mark.parametrize("key", FORMER_DEFAULTS)
def test_production_settings_refuse_a_published_secret_key(key):
    result = _manage("check", **{**PRODUCTION, "SECRET_KEY": key})

    assert result.returncode != 0
    assert "SECRET_KEY is a published or placeholder value" in result.stderr


@pytest.mark.parametrize(
    "key",
    ["", "short-but-random-Xy8k", "a" * 60, "django-insecure-" + secrets.token_urlsafe(50)],
    ids=["empty", "short", "one-letter", "django-insecure"],
)
def test_production_settings_refuse_an_empty_short_or_weak_secret_key(key):
    result = _manage("check", **{**PRODUCTION, "SECRET_KEY": key})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("jwt_key", [FORMER_DEFAULTS[0], "too-short-jwt-key-1234"])
def test_production_settings_refuse_a_published_or_short_jwt_signing_key(jwt_key):
    result = _manage("check", **{**PRODUCTION, "JWT_SIGNING_KEY": jwt_key})

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY" in result.stderr


def test_debug_mode_still_starts_on_the_development_key():
    env = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}

    result = _manage("check", **{**env, "DEBUG": "true"})

    assert result.returncode == 0, result.stderr


def _compose_web() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]


def test_compose_requires_a_secret_key_and_gives_none_of_its_own():
    environment = _compose_web()["environment"]

    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert environment["MFA_ENCRYPTION_KEY"].startswith("${MFA_ENCRYPTION_KEY:?")
    names = ("SECRET_KEY", "JWT_SIGNING_KEY", "MFA_ENCRYPTION_KEY")
    assert not any(":-" in str(environment.get(name, "")) for name in names)


def test_compose_publishes_the_service_on_loopback_by_default():
    (port,) = _compose_web()["ports"]

    assert port.startswith("${WEB_BIND:-127.0.0.1}:")


def test_compose_runs_the_holds_sweeper_on_the_web_image_after_its_migrations():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    sweeper, web = services["holds-sweeper"], services["web"]

    assert sweeper["image"] == web["image"]
    assert sweeper["command"] == ["python", "manage.py", "expire_holds", "--loop"]
    assert sweeper["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert sweeper["environment"]["MIGRATE_ON_START"] == "0"
    assert sweeper["environment"]["SECRET_KEY"] == web["environment"]["SECRET_KEY"]
    assert sweeper["environment"]["MFA_ENCRYPTION_KEY"] == web["environment"]["MFA_ENCRYPTION_KEY"]
    assert sweeper["environment"]["DATABASE_URL"] == web["environment"]["DATABASE_URL"]
    assert "ports" not in sweeper


def test_compose_runs_the_webhooks_worker_on_the_web_image_after_its_migrations():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker, web = services["webhooks-worker"], services["web"]

    assert worker["image"] == web["image"]
    assert worker["command"] == ["python", "manage.py", "deliver_webhooks"]
    assert worker["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert worker["environment"]["MIGRATE_ON_START"] == "0"
    assert worker["environment"]["SECRET_KEY"] == web["environment"]["SECRET_KEY"]
    assert worker["environment"]["DATABASE_URL"] == web["environment"]["DATABASE_URL"]
    assert worker["healthcheck"] == {"disable": True}
    assert "ports" not in worker


def test_compose_runs_the_loyalty_booker_on_the_web_image_after_its_migrations():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    booker, web = services["loyalty-booker"], services["web"]

    assert booker["image"] == web["image"]
    assert booker["command"] == ["python", "manage.py", "book_loyalty", "--loop"]
    assert booker["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert booker["environment"]["MIGRATE_ON_START"] == "0"
    assert booker["environment"]["SECRET_KEY"] == web["environment"]["SECRET_KEY"]
    assert booker["environment"]["DATABASE_URL"] == web["environment"]["DATABASE_URL"]
    assert "ports" not in booker


def test_env_example_ships_no_secret_key():
    values = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and line[0] != "#"
    )

    assert values["SECRET_KEY"] == ""
    assert values["JWT_SIGNING_KEY"] == ""
    assert values["MFA_ENCRYPTION_KEY"] == ""


# --- the client's address behind proxies --------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "expected"),
    [({}, "1"), ({"TLS_TERMINATED_BY_PROXY": "false"}, "0"), ({"NUM_PROXIES": "2"}, "2")],
)
def test_num_proxies_defaults_to_one_proxy_behind_the_tls_proxy(environment, expected):
    code = "from django.conf import settings; print(settings.NUM_PROXIES, settings.REST_FRAMEWORK['NUM_PROXIES'])"

    result = _manage("shell", "--no-imports", "-c", code, **PRODUCTION, **environment)

    assert result.stdout.split() == [expected, expected], result.stderr
