#!/bin/sh
# Container entrypoint: bring the schema up to date, then run the command
# (gunicorn by default, see the Dockerfile's CMD) as PID 1 so that it gets
# the stop signal and shuts down gracefully.
#
# With several web containers, run `python manage.py migrate` once as a
# release step instead and start them with MIGRATE_ON_START=0: Django's
# migrations are not meant to run concurrently.
set -eu

if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
  python manage.py migrate --noinput
fi

exec "$@"
