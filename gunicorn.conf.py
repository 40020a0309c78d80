"""gunicorn settings; every value can be overridden by a GUNICORN_* environment variable."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Sync workers: one request per process at a time, which is what the money
# services (Redis lock outside, database transaction inside) are written for.
# One per core the process may use, at least two: on 2 cores shared with
# PostgreSQL and Redis, 2 workers moved the hot pair 15-40 % faster than 3 or 4
# (the locked work of one balance runs on a less crowded CPU) and the cold
# transfers as fast (docs/PERFORMANCE.md, "One gunicorn worker per core"). With the database on
# other machines the workers wait longer per request: measure, and set it.
workers = int(os.environ.get("GUNICORN_WORKERS") or max(2, len(os.sched_getaffinity(0))))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 50
accesslog = None  # the app writes one JSON line per request
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Once the application is loaded in a worker (wallet_project/gc_tuning.py, worker_heartbeat.py)."""
    from wallet_project import gc_tuning, worker_heartbeat

    worker_heartbeat.remember(worker)
    gc_tuning.after_start()


def pre_request(worker, req):  # type: ignore[no-untyped-def]
    """As each request starts: collect the last request's cycles while they are young, now that they are
    garbage (wallet_project/gc_tuning.py says why not in `post_request`)."""
    from wallet_project import gc_tuning

    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's own pre_request does
    gc_tuning.before_request()
