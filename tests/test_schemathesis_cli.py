"""Schemathesis's command line against a live gunicorn: every check, the stateful phase included, no failure.

What a new user of the API would run (`st run <the service>/api/schema/ --checks all`), bounded for CI: a
number of examples per operation and a time budget for the whole run, within which fuzzing and the stateful
phase take turns. The run is authenticated as two users, each with a funded wallet (a Web Fuzzing Commons auth
file), so that movements can succeed and `object_level_authorization` can check that neither sees the other's
objects. The repository's `schemathesis.toml` holds the run's settings, with the reason for each.

One check is excluded, and replaced: Schemathesis's `positive_data_acceptance` wants every schema-valid request
accepted (a 2xx, or 401, 403, 404, 409, 429), but the contract (../shared/API.md) mandates refusals that no
schema can foresee, because the state of the service or of the world decides them: 422 "a valid request that
the rules refuse" (funds, frozen wallets, rates), and 400 for an amount with more decimals than the currency of
the balance it names, for a webhook URL whose host does not resolve to a public address, for a password Django's
validators find common, for a one-time code that is not the current one, and for an events cursor that is not
one of the caller's events. `tests/schemathesis_hooks.py` holds the same check minus exactly those refusals,
each recognised by its operation and its error body; the run uses it.

The seed is random unless SCHEMATHESIS_SEED gives one; a failure names it, so it can be run again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.live import BASE_DIR, access_token, live_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ST = str(Path(sys.executable).with_name("st"))
# Bounded for CI (2 cores): examples per operation in the examples, coverage and fuzzing phases, and the whole
# run's budget in seconds, which the fuzzing and stateful phases share once the others are done.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))
MAX_TIME = int(os.environ.get("SCHEMATHESIS_MAX_TIME", "100"))
SEED = os.environ.get("SCHEMATHESIS_SEED")
# The contract's exclusion (module docstring); `positive_data_acceptance_within_the_contract` stands in for it.
EXCLUDED_CHECKS = ["positive_data_acceptance"]
REPLACEMENT_CHECK = "positive_data_acceptance_within_the_contract"
PHASES = ["examples", "coverage", "fuzzing", "stateful"]


def _funded_identity(name: str) -> dict:
    """A user with a wallet holding 1,000,000.00 USD and 1,000,000.00 EUR, as a WFC auth entry."""
    user = UserFactory()
    wallet = WalletFactory(owner=user, name=f"{name}'s wallet")
    funded_balance(currency="USD", amount="1000000.00", wallet=wallet)
    funded_balance(currency="EUR", amount="1000000.00", wallet=wallet)
    return {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {access_token(user)}"}]}


def _run_configuration(directory: Path) -> Path:
    """The repository's settings, and the two identities (the first is the one requests are made as)."""
    auth = directory / "auth.json"
    auth.write_text(json.dumps({"schemaVersion": "0.1", "auth": [_funded_identity("owner"), _funded_identity("peer")]}))
    configuration = directory / "schemathesis.toml"
    configuration.write_text(
        (BASE_DIR / "schemathesis.toml").read_text()
        + f'\n[auth.wfc]\npath = "{auth}"\nuser = "owner"\npeers = ["owner", "peer"]\n'
    )
    return configuration


def _command(configuration: Path, url: str, reports: Path) -> list[str]:
    command = [
        ST,
        "--config-file",
        str(configuration),
        "run",
        url,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        # One worker: with several, Hypothesis's description of lambdas races on Python's AST module
        # ("AST constructor recursion depth mismatch") and Schemathesis reports an error of its own.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(reports / "report.json"),
        "--report-ndjson-path",
        str(reports / "events.ndjson"),
    ]
    return command + (["--seed", SEED] if SEED else [])


def test_schemathesis_cli_with_every_check_and_the_stateful_phase_finds_nothing(tmp_path):
    # The identities are access tokens: the run must end before they do.
    assert MAX_TIME + 60 < settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds(), "SCHEMATHESIS_MAX_TIME"
    configuration = _run_configuration(tmp_path)
    reports = tmp_path / "reports"

    with live_gunicorn() as server:
        url = f"http://127.0.0.1:{server.port}/api/schema/"
        run = subprocess.run(
            _command(configuration, url, reports),
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=MAX_TIME + 300,
            check=False,
        )
        server_log = server.output()
    output = run.stdout + run.stderr
    where = f"{output[-8000:]}\n--- gunicorn ---\n{server_log}"

    assert run.returncode == 0, where
    report = json.loads((reports / "report.json").read_text())
    assert report["exit_code"] == 0, where
    assert report["failures"] == [] and report["errors"] == [], where
    assert report["test_cases"]["with_failures"] == report["test_cases"]["errored"] == 0, where
    assert report["stop_reason"] in ("completed", "max_time"), where
    assert {phase: report["phases"][phase]["status"] for phase in PHASES} == dict.fromkeys(PHASES, "success"), where
    operations = report["operations"]
    assert operations["tested"] == operations["selected"] == operations["total"] >= 40, where
    # Every check ran and passed each time (the excluded one never ran); its stand-in judged every case.
    checks = _check_outcomes(reports / "events.ndjson")
    assert set(checks) == {(name, "success") for name, _ in checks}, (checks, where)
    ran = {name for name, _ in checks}
    assert ran.isdisjoint(EXCLUDED_CHECKS), (ran, where)
    assert {REPLACEMENT_CHECK, "object_level_authorization", "use_after_free", "ignored_auth"} <= ran, (ran, where)
    assert checks[(REPLACEMENT_CHECK, "success")] > operations["total"] * MAX_EXAMPLES, (checks, where)
    # The summary says the same, and the stateful phase walked the document's links.
    generated = report["test_cases"]["generated"]
    assert re.search(rf"\b{generated} generated, {generated} passed\b", output), where
    stateful = output[output.index("Stateful (") :]
    scenarios = int(re.search(r"Scenarios:\s+(\d+)", stateful)[1])
    links_covered = int(re.search(r"API Links:\s+(\d+) covered", stateful)[1])
    assert scenarios > 0 and links_covered > 0, where


def _check_outcomes(events: Path) -> Counter:
    """How often each (check, status) was recorded in the run's scenarios (the NDJSON report's events)."""
    outcomes: Counter = Counter()
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        for results in (finished.get("recorder") or {}).get("checks", {}).values():
            outcomes.update((result["name"], result["status"]) for result in results)
    return outcomes
