# The wallet service: gunicorn serving the Django app, static files by whitenoise.
# Build: docker build -t wallet .   Run it with docker compose (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# An unprivileged user owns nothing in /app: the code and the collected static
# files are read-only to the running process (all state is in PostgreSQL and Redis).
RUN groupadd --system wallet \
    && useradd --system --gid wallet --home-dir /app --no-create-home --shell /usr/sbin/nologin wallet

# Dependencies first, so that a code change does not reinstall them.
# psycopg[binary] ships its own libpq: no compiler or system packages needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN chmod 0755 docker/entrypoint.sh

# collectstatic imports the settings, which refuse to start with DEBUG off
# unless DATABASE_URL, REDIS_URL, an unpublished SECRET_KEY and an
# MFA_ENCRYPTION_KEY are set. The keys are random and thrown away with this
# step; the URLs are placeholders that nothing connects to. None of them is
# kept in the image's environment.
RUN DEBUG=false \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    MFA_ENCRYPTION_KEY="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    DATABASE_URL=postgres://build:build@build-placeholder:5432/build \
    REDIS_URL=redis://build-placeholder:6379/0 \
    python manage.py collectstatic --noinput

USER wallet

EXPOSE 8000

# Liveness: /health/ answers 200 while the process runs. The Host header must be
# in ALLOWED_HOSTS (localhost is by default); X-Forwarded-Proto keeps
# SECURE_SSL_REDIRECT from redirecting the probe. No curl in the slim image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.Request('http://127.0.0.1:8000/health/', headers={'Host': 'localhost', 'X-Forwarded-Proto': 'https'}); sys.exit(0 if urllib.request.urlopen(r, timeout=4).status == 200 else 1)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "wallet_project.wsgi:application", "-c", "gunicorn.conf.py"]
