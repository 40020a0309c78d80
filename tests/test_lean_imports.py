"""A web worker keeps out of its memory what only rare requests need: cryptography's bindings
(wallet_project/lean_imports.py, wsgi.py), and the libraries imported where they are used
(docs/PERFORMANCE.md, "Worker memory").

Each check runs in a fresh interpreter, as a gunicorn worker starts: the
modules a test process has already imported would hide what the worker does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = """
import sys
import wallet_project.wsgi
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.exceptions import TokenError
token = AccessToken()
token["user_id"] = "7f0e3f52-9d0b-4c5e-8a8f-3f5d2a4c1e10"
assert AccessToken(str(token))["user_id"] == token["user_id"]
header, payload, signature = str(token).split(".")
try:
    AccessToken(".".join([header, payload, signature[::-1]]))
except TokenError:
    pass
else:
    raise SystemExit("a token with a forged signature was accepted")
import jwt
from jwt.exceptions import InvalidAlgorithmError
print("bindings", "cryptography.hazmat.bindings._rust" in sys.modules)
print("algorithms", sorted(jwt.algorithms.get_default_algorithms()))
try:
    jwt.decode(jwt.encode({"a": 1}, "k" * 32, algorithm="HS256"), "k" * 32, algorithms=["RS256"])
except InvalidAlgorithmError:
    print("rs256 refused")
from mfa.crypto import decrypt, encrypt
print("fernet", decrypt(encrypt(b"secret")) == b"secret")
print("bindings", "cryptography.hazmat.bindings._rust" in sys.modules)
"""


def run_as_worker(code: str) -> list[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wallet_project.settings", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if not line.startswith("{")]


def test_worker_signs_and_checks_tokens_without_loading_cryptography() -> None:
    lines = run_as_worker(WORKER)
    assert lines[0] == "bindings False"
    assert lines[1].startswith("algorithms [") and "'HS256'" in lines[1] and "RS256" not in lines[1]
    assert lines[2] == "rs256 refused"
    # The second factors' Fernet still works in the same worker, and loads cryptography when it is used.
    assert lines[3:] == ["fernet True", "bindings True"]


def test_hidden_module_is_importable_again_afterwards() -> None:
    code = (
        "import sys\n"
        "from wallet_project.lean_imports import hidden\n"
        "with hidden('cryptography'):\n"
        "    try:\n"
        "        import cryptography.fernet\n"
        "    except ModuleNotFoundError:\n"
        "        print('hidden')\n"
        "import cryptography.fernet\n"
        "print('loaded', 'cryptography.fernet' in sys.modules)\n"
    )
    assert run_as_worker(code) == ["hidden", "loaded True"]


# Imported at the first request that needs them, never by a worker's start-up (its application and URLconf).
RARE_LIBRARIES = ["reportlab", "PIL", "qrcode", "httpx", "yaml"]


def test_worker_start_up_loads_the_urlconf_and_leaves_the_rare_requests_libraries_out() -> None:
    code = (
        "import sys\n"
        "import wallet_project.wsgi\n"
        "print('urlconf', all(name in sys.modules for name in ['wallet_project.urls', 'transactions.views']))\n"
        f"print(sorted({{name.split('.')[0] for name in sys.modules}} & {set(RARE_LIBRARIES)!r}))\n"
        "from transactions.statements.views import WRITERS\n"
        "from transactions.statements.pdf_format import PdfStatement\n"
        "print('reportlab' in sys.modules, WRITERS['pdf'].__module__ == 'transactions.statements.views')\n"
    )
    # The first request of a worker does not wait for the URLconf (wallet_project/wsgi.py); a PDF still imports
    # reportlab when it needs it.
    assert run_as_worker(code) == ["urlconf True", "[]", "True True"]


def test_worker_serves_the_schema_in_yaml_though_drf_started_without_pyyaml() -> None:
    code = (
        "import sys\n"
        "import wallet_project.wsgi\n"
        "from django.test import Client\n"
        "from rest_framework import compat\n"
        "print('drf yaml', compat.yaml)\n"
        "answer = Client().get('/api/schema/', HTTP_HOST='localhost')\n"
        "print(answer.status_code, answer.content.startswith(b'openapi: 3.'), 'yaml' in sys.modules)\n"
    )
    assert run_as_worker(code) == ["drf yaml None", "200 True True"]
