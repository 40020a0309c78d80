"""A statement through a real gunicorn: streamed over HTTP/1.1 in chunks, whole at the other end."""

from __future__ import annotations

import csv
import http.client
import io
from datetime import timedelta
from urllib.parse import urlencode

import pypdf
import pytest
from django.utils import timezone

from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.live import access_token, live_gunicorn
from transactions.tests.ledger_builder import book_many
from transactions.tests.statement_reading import statement_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_gunicorn_streams_a_statement_whole_in_every_format():
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    book_many(balance, 1500)
    end = timezone.now() + timedelta(seconds=1)
    query = {"from": (end - timedelta(days=1)).isoformat(), "to": end.isoformat()}
    token = access_token(user)

    with live_gunicorn(workers=1) as server:
        bodies = {}
        for fmt in ("json", "csv", "pdf"):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            try:
                connection.request(
                    "GET",
                    f"{statement_url(balance)}?{urlencode({**query, 'format': fmt})}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                response = connection.getresponse()
                assert response.status == 200, server.output()
                assert response.getheader("Transfer-Encoding") == "chunked"  # no length known up front: streamed
                bodies[fmt] = response.read()  # raises IncompleteRead if the stream was cut
            finally:
                connection.close()

    rows = list(csv.DictReader(io.StringIO(bodies["csv"].decode())))
    assert sum(row["record"] == "entry" for row in rows) == 1501
    assert len(pypdf.PdfReader(io.BytesIO(bodies["pdf"]), strict=True).pages) > 20
    assert bodies["json"].endswith(b'"}')
