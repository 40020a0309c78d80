#!/usr/bin/env bash
# `make run`: migrate, seed the demo data, collect static files, serve on $PORT with a webhook worker beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
PORT=${PORT:-8000}

if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]]; then
  cat >&2 <<'WARN'
############################################################################
#  DEVELOPMENT MODE: DATABASE_URL and/or REDIS_URL are not set.            #
#  Using SQLite and/or an in-process lock. This is for ONE process on ONE  #
#  machine only: never run it with several workers or in production.       #
#  Set DATABASE_URL and REDIS_URL (see .env.example) for the real service. #
############################################################################
WARN
fi

"$BIN/python" manage.py migrate --noinput
"$BIN/python" manage.py collectstatic --noinput >/dev/null
if "$BIN/python" manage.py help seed_demo >/dev/null 2>&1; then
  "$BIN/python" manage.py seed_demo
fi

cat <<URLS

  API:      http://127.0.0.1:${PORT}/api/v1/
  Docs:     http://127.0.0.1:${PORT}/docs/   (ReDoc: /redoc/, schema: /api/schema/)
  Admin:    http://127.0.0.1:${PORT}/admin/
  Health:   http://127.0.0.1:${PORT}/health/  /ready/

URLS

if [[ "${ADMIN_REQUIRE_MFA:-}" =~ ^(1|true|yes|on)$ ]]; then
  echo "  Two-factor: every staff member gives a TOTP code after the password (ADMIN_REQUIRE_MFA is on)."
else
  cat <<'MFA'
  Two-factor: optional here. Staff who add an authenticator app (/admin/mfa/enrol/ once logged in) are
  asked for its code; export ADMIN_REQUIRE_MFA=true to ask it of every staff member, and
  MFA_STEP_UP_AMOUNT=1000 for a recent code on API movements worth more than 1000 USD.
MFA
fi
echo

GUNICORN_ARGS=(wallet_project.wsgi:application -c gunicorn.conf.py --bind "0.0.0.0:${PORT}")
if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]]; then
  GUNICORN_ARGS+=(--workers 1)
fi

# The webhook worker and the cashback booker run beside the server and stop with it: Ctrl-C or SIGTERM
# stops all three, and if the server exits by itself the workers are stopped too. All run in the background
# so that this shell can pass a SIGTERM on at once (a trap waits for a foreground command to end).
"$BIN/python" manage.py deliver_webhooks &
worker=$!
"$BIN/python" manage.py book_loyalty --loop &
booker=$!
"$BIN/gunicorn" "${GUNICORN_ARGS[@]}" &
server=$!
stop() {
  kill -TERM "$server" "$worker" "$booker" 2>/dev/null || true
}
trap stop INT TERM
status=0
wait "$server" || status=$?
stop
wait "$server" 2>/dev/null || true
wait "$worker" 2>/dev/null || true
wait "$booker" 2>/dev/null || true
exit "$status"
