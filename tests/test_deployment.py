"""Production settings: `check --deploy` is clean, and unsafe configurations refuse to start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789-abcdefghij",
    "DATABASE_URL": os.environ["DATABASE_URL"],
    "REDIS_URL": os.environ["REDIS_URL"],
    "ALLOWED_HOSTS": "wallet.example.com",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in PRODUCTION and key != "JWT_SIGNING_KEY"}
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


def test_jwt_signing_key_can_be_set_apart_from_the_secret_key():
    code = "from django.conf import settings; print(settings.SIMPLE_JWT['SIGNING_KEY'] == settings.SECRET_KEY)"
    env = {**PRODUCTION, "JWT_SIGNING_KEY": "a-separate-jwt-signing-key-of-more-than-32-bytes"}

    apart = _manage("shell", "--no-imports", "-c", code, **env)
    same = _manage("shell", "--no-imports", "-c", code, **PRODUCTION)

    assert apart.stdout.strip() == "False", apart.stderr
    assert same.stdout.strip() == "True", same.stderr
