"""Load benchmarks against a real gunicorn; see bench/run.py and docs/PERFORMANCE.md, "Running the harness"."""
