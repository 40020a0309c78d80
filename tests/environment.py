"""Loaded by pytest before Django's settings (`-p tests.environment` in pytest.ini).

Tests run against the real PostgreSQL and Redis of this machine unless the
environment says otherwise; pytest-django creates its own `test_…` database,
and the locks go to Redis database 15, never to the one the service uses.
"""

import os
import secrets

from cryptography.fernet import Fernet

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wallet")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# A fresh key per run: the production guard refuses every key written in the repository.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DEBUG", "false")
# A fresh key per run too: production refuses to start without one.
os.environ.setdefault("MFA_ENCRYPTION_KEY", Fernet.generate_key().decode())
# The admin's second step is asked for by the tests that turn it on; the others log staff in with a password.
os.environ.setdefault("ADMIN_REQUIRE_MFA", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Short waits keep the lock-timeout tests quick; production defaults are in .env.example.
os.environ.setdefault("LOCK_WAIT_SECONDS", "5")
os.environ.setdefault("LOCK_EXPIRE_SECONDS", "10")
# Throttles stay out of the way of ordinary tests; the throttling tests set their own rates.
os.environ.setdefault("THROTTLE_ANON_RATE", "100000/minute")
os.environ.setdefault("THROTTLE_USER_RATE", "100000/minute")
os.environ.setdefault("THROTTLE_LOGIN_RATE", "100000/minute")
