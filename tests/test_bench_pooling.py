"""The harness's pooling of a point's interleaved slices (`bench.run`): pure functions, no load.

A ratio to the raw SQL is only as good as the two sides' figures; these
check that slices pooled give what one long measurement of the same requests
would have given.
"""

from __future__ import annotations

import random

import pytest

from bench.run import abba, merged_usage, pooled_latency, sql_summary

# The bands of `bench.lua`'s quantiles(): half a percent up to 95, 0.05 to 99.9, 0.01 to 100.
BANDS = [(0.0, 95.0, 0.5), (95.0, 99.9, 0.05), (99.9, 100.0, 0.01)]


def quantiles(samples: list[int]) -> list[list[float]]:
    """What wrk's `latency:percentile(p)` gives at each band's middle, for these samples."""
    ordered = sorted(samples)
    triples = []
    for start, end, width in BANDS:
        for k in range(round((end - start) / width)):
            p = start + (k + 0.5) * width
            rank = max(1, round(p / 100 * len(ordered) + 0.5))
            triples.append([p, width, ordered[min(rank, len(ordered)) - 1]])
    return triples


def exact(samples: list[int], p: float) -> int:
    ordered = sorted(samples)
    return ordered[max(0, round(p / 100 * len(ordered) + 0.5) - 1)]


def test_slices_alternate_and_mirror() -> None:
    assert abba(1) == ["http", "sql"]
    assert abba(2) == ["http", "sql", "sql", "http"]
    assert abba(3) == ["http", "sql", "sql", "http", "http", "sql"]


def test_pooled_percentiles_match_the_pooled_samples() -> None:
    rng = random.Random(5)
    # A fast slice and a slow one, of different sizes: the machine drifting during the point.
    fast = [int(rng.lognormvariate(10, 0.3)) for _ in range(12_000)]
    slow = [int(rng.lognormvariate(10.4, 0.4)) for _ in range(7_000)]
    pooled = pooled_latency([(len(fast), quantiles(fast)), (len(slow), quantiles(slow))])
    both = fast + slow
    # Within the bands' resolution: a band stands for its middle's latency.
    for name, p, rel in (
        ("p50", 50, 0.01),
        ("p90", 90, 0.01),
        ("p95", 95, 0.01),
        ("p99", 99, 0.01),
        ("p999", 99.9, 0.02),
    ):
        assert pooled[name] == pytest.approx(exact(both, p), rel=rel), name
    # Not a mean of the slices' own percentiles: the slow slice's tail decides the p99.
    mean_of_p99 = (exact(fast, 99) * len(fast) + exact(slow, 99) * len(slow)) / len(both)
    assert abs(pooled["p99"] - mean_of_p99) > 0.05 * mean_of_p99


def test_one_slice_gives_its_own_percentiles() -> None:
    samples = list(range(1, 10_001))
    pooled = pooled_latency([(len(samples), quantiles(samples))])
    assert pooled["p50"] == pytest.approx(5_000, abs=30)
    assert pooled["p99"] == pytest.approx(9_900, abs=10)


def test_usage_adds_seconds_and_weights_the_busy_share_by_time() -> None:
    usage = merged_usage(
        [
            {"gunicorn_cpu_s": 1.0, "postgres_cpu_s": 0.5, "redis_cpu_s": 0.1, "other_processes_cpu_s": 0.2,
             "machine_busy_pct": 80.0, "wall_s": 10.0},
            {"gunicorn_cpu_s": 2.0, "postgres_cpu_s": 1.5, "redis_cpu_s": 0.3, "other_processes_cpu_s": 0.0,
             "machine_busy_pct": 50.0, "wall_s": 30.0},
        ]
    )  # fmt: skip
    assert usage == {
        "gunicorn_cpu_s": 3.0,
        "postgres_cpu_s": 2.0,
        "redis_cpu_s": 0.4,
        "other_processes_cpu_s": 0.2,
        "wall_s": 40.0,
        "machine_busy_pct": 57.5,
    }


def test_sql_rate_is_transactions_over_the_time_pgbench_measured() -> None:
    idle = {"gunicorn_cpu_s": 0.0, "postgres_cpu_s": 1.0, "redis_cpu_s": 0.0, "other_processes_cpu_s": 0.0,
            "machine_busy_pct": 60.0, "wall_s": 10.0}  # fmt: skip
    slices = [
        {"tps": 2000.0, "transactions": 20_000, "failed": 0, "latencies_us": [1000] * 99 + [9000],
         "duration_s": 10, "cpu_s": 1.0, "usage": idle},
        {"tps": 500.0, "transactions": 10_000, "failed": 1, "latencies_us": [2000] * 100,
         "duration_s": 20, "cpu_s": 1.0, "usage": idle},
    ]  # fmt: skip
    summary = sql_summary(slices)
    assert summary["tps"] == 1000.0  # 30,000 in 10 s + 20 s, not the mean of the two rates (1,250)
    assert summary["transactions"] == 30_000
    assert summary["failed"] == 1
    assert summary["slices"] == 2
    assert summary["latency_ms"] == {"p50": 2.0, "p95": 2.0, "p99": 2.0}
    assert summary["cpu_ms_per_request"]["postgres"] == pytest.approx(2.0 / 30_000 * 1000, abs=1e-3)
