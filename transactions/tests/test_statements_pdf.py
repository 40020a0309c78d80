"""The PDF statement: a well-formed file that any viewer opens, a header on every page, totals that add up."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from http import HTTPStatus

import pypdf
import pytest
from PIL import Image

from conftest import client_for
from tests.factories import UserFactory, WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.statements.pdf_document import StreamingCanvas
from transactions.statements.pdf_format import instant_label
from transactions.tests.ledger_builder import book_many, book_other_types
from transactions.tests.statement_reading import a_second_around, body_of, expected_summary, period, statement_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def holder(db):
    return UserFactory(name="Zoë Ångström")


@pytest.fixture
def statement_pdf(holder, staff_user):
    """A PDF statement of a balance with 2,500 entries, and what the ledger says it must show."""
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=holder, name="Household"))
    book_other_types(balance, funded_balance(amount="50.00", currency="EUR"), staff_user)
    book_many(balance, 2500)
    entries = list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence"))
    start, end = a_second_around(entries)
    response = client_for(holder).get(statement_url(balance), period(start, end, "pdf"))
    assert response.status_code == HTTPStatus.OK
    return response, body_of(response), expected_summary(balance, start, end), balance


def _xref_points_at_every_object(data: bytes) -> int:
    """Check the cross-reference table by hand: each offset is where its object starts. Returns the object count."""
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data).group(1))
    assert data[startxref : startxref + 4] == b"xref"
    lines = data[startxref:].split(b"\n")
    first, count = (int(part) for part in lines[1].split())
    assert first == 0
    for number, line in enumerate(lines[2 : 2 + count]):
        offset, _, kind = line.split()[:3]
        if number == 0:
            assert kind == b"f"
            continue
        assert kind == b"n"
        assert data[int(offset) :].startswith(b"%d 0 obj" % number), number
    return count - 1


def test_the_pdf_is_a_well_formed_file_with_every_page_in_its_tree(statement_pdf):
    response, data, _, balance = statement_pdf

    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].endswith('.pdf"')
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    objects = _xref_points_at_every_object(data)
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    pages = len(reader.pages)
    assert pages > 30  # 2,500 entries at ~60 a page
    assert objects >= 2 * pages  # each page and its content stream
    assert reader.metadata.title == f"Statement of balance {balance.pk}"
    assert {(round(page.mediabox.width), round(page.mediabox.height)) for page in reader.pages} == {(595, 842)}  # A4


def test_every_page_has_the_header_with_the_holder_the_currency_and_the_period(statement_pdf, holder):
    _, data, _, _ = statement_pdf
    reader = pypdf.PdfReader(io.BytesIO(data))

    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"Holder: Zoë Ångström <{holder.email}>" in text, number
        assert "Currency: USD (US Dollar)" in text, number
        assert "Period: from " in text and "(inclusive) to " in text, number
        assert f"Page {number}" in text, number


def test_the_pdf_lists_every_entry_and_its_totals_add_up(statement_pdf):
    _, data, expected, _ = statement_pdf
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)

    # Every entry's number, in chain order, once.
    numbers = [int(n) for n in re.findall(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\s*\n?(\d+)\b", text, re.M)]
    assert numbers == expected.sequences
    assert f"Opening balance\n{expected.opening:.2f}" in text.replace("\n\n", "\n")
    assert f"Closing balance\n{expected.closing:.2f}" in text.replace("\n\n", "\n")
    assert (
        f"Opening balance {expected.opening:.2f} + credits {expected.credits:.2f} - debits {expected.debits:.2f} "
        f"= closing balance {expected.closing:.2f} USD"
    ) in text
    assert expected.opening + expected.credits - expected.debits == expected.closing
    totals = text[text.index("Totals by type") :]
    for kind, (count, amount) in expected.totals.items():
        assert re.search(rf"{kind}\n{count}\n{amount:.2f}", totals), kind
    assert re.search(rf"All entries\n{len(expected.sequences)}\n{expected.debits:.2f}\n{expected.credits:.2f}", totals)


def test_text_beyond_western_european_is_drawn_as_question_marks(statement_pdf):
    _, data, _, _ = statement_pdf
    text = pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()

    assert "Café Zürich ?? - Line one line two" in text


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed")
def test_poppler_renders_the_first_and_the_last_page(statement_pdf, tmp_path):
    _, data, _, _ = statement_pdf
    path = tmp_path / "statement.pdf"
    path.write_bytes(data)
    pages = len(pypdf.PdfReader(io.BytesIO(data)).pages)

    for number in (1, pages):
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "40",
                "-png",
                "-singlefile",
                "-f",
                str(number),
                "-l",
                str(number),
                str(path),
                str(tmp_path / f"p{number}"),
            ],
            check=True,
            capture_output=True,
        )
        image = Image.open(tmp_path / f"p{number}.png").convert("L")
        width, height = image.size
        header = image.crop((0, 0, width, height // 8))
        assert header.getextrema()[0] < 100, number  # dark text in the header band: the page is drawn


def test_the_canvas_hands_over_each_page_as_soon_as_it_is_finished():
    sink = io.BytesIO()
    canvas = StreamingCanvas(sink)
    canvas.drawString(100, 700, "first page")
    canvas.showPage()
    after_first = sink.tell()
    canvas.drawString(100, 700, "second page")
    canvas.showPage()
    after_second = sink.tell()
    canvas.save()

    assert after_first > 0 and after_second > after_first  # written before the document was saved
    data = sink.getvalue()
    _xref_points_at_every_object(data)
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert [page.extract_text().strip() for page in reader.pages] == ["first page", "second page"]


def test_instants_are_labelled_in_utc_with_their_microseconds_when_they_have_some():
    assert instant_label(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01 00:00:00 UTC"
    assert instant_label(datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC)) == "2026-01-01 00:00:00.000005 UTC"
