#!/bin/sh
# Container entrypoint: bring the schema up to date, then run the command
# (gunicorn by default, see the Dockerfile's CMD) as PID 1 so that it gets
# the stop signal and shuts down gracefully.
#
# With several web containers, run `python manage.py migrate` once as a
# release step instead and start them with MIGRATE_ON_START=0: Django's
# migrations are not meant to run concurrently.
#
# MIGRATE_DATABASE_URL, when set, is a direct connection to PostgreSQL for the
# migration, around a transaction pooler that DATABASE_URL goes through: a
# long schema change is not cut by the pooler's timeouts, and any session
# setting a migration makes stays on its own connection.
set -eu

if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
  if [ -n "${MIGRATE_DATABASE_URL:-}" ]; then
    DATABASE_URL="$MIGRATE_DATABASE_URL" DB_TRANSACTION_POOLING=false python manage.py migrate --noinput
  else
    python manage.py migrate --noinput
  fi
fi

exec "$@"
