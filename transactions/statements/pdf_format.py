"""A statement as a PDF, drawn with reportlab and sent page by page (`pdf_document.StreamingCanvas`).

Every page starts with the same header (the holder, the wallet and balance,
the currency and the period) and the table's column titles, and ends with the
page number; the first page opens with the opening balance, the last closes
with the closing balance, the totals by type and the sum that proves them.
Text is drawn in the PDF's standard Helvetica, which every viewer has without
embedding a font: characters beyond Western European text (Windows-1252)
are drawn as "?" (the JSON and CSV statements carry them as they are).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth

from transactions.models import CREDIT_TYPES, Transaction
from transactions.statements.checking import Totals
from transactions.statements.pdf_document import StreamingCanvas
from transactions.statements.selectors import Statement
from wallet_project.money import format_amount

FONT, BOLD = "Helvetica", "Helvetica-Bold"
SIZE = 7.5
ROW = 10.5
LEFT, RIGHT = 40.0, A4[0] - 40.0
TOP = A4[1] - 40.0
FIRST_ROW = TOP - 82.0
BOTTOM = 56.0  # the last row's baseline; the page number sits below it
# x of each column: text columns start there, amount columns (and the sequence) end there.
DATE_X, SEQUENCE_RIGHT, TYPE_X, DETAILS_X = LEFT, 152.0, 158.0, 240.0
DETAILS_WIDTH = 130.0
DEBIT_RIGHT, CREDIT_RIGHT, BALANCE_RIGHT = 430.0, 492.0, RIGHT
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` as the standard fonts can draw it: Windows-1252, control characters as spaces, the rest "?"."""
    return _CONTROL.sub(" ", text).encode("cp1252", errors="replace").decode("cp1252")


def instant_label(moment: datetime) -> str:
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{shown}.{moment.microsecond:06d} UTC" if moment.microsecond else f"{shown} UTC"


def _fitted(text: str, width: float) -> str:
    """`text` cut (with an ellipsis) to fit `width` points in the body font."""
    if stringWidth(text, FONT, SIZE) <= width:
        return text
    while text and stringWidth(text + "...", FONT, SIZE) > width:
        text = text[:-1]
    return text + "..."


class _Pending:
    """Where the canvas writes: bytes kept until the stream takes them."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if data:
            self.parts.append(data)

    def take(self) -> Iterator[bytes]:
        if self.parts:
            data, self.parts = b"".join(self.parts), []
            yield data


class PdfStatement:
    content_type = "application/pdf"
    extension = "pdf"
    attachment = True

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.minor_unit = statement.balance.currency.minor_unit
        self.sink = _Pending()
        self.canvas = StreamingCanvas(self.sink, pagesize=A4, pageCompression=1)
        self.canvas.setTitle(f"Statement of balance {statement.balance.pk}")
        self.canvas.setSubject(
            f"{statement.balance.currency_id}, {instant_label(statement.start)} to {instant_label(statement.end)}"
        )
        self.canvas.setAuthor("Wallet service")
        self.canvas.setCreator("Wallet service")
        self.page = 0
        self.y = FIRST_ROW

    def _amount(self, amount: Decimal) -> str:
        return format_amount(amount, self.minor_unit)

    # --- pages ----------------------------------------------------------------------------------

    def _header(self) -> None:
        statement, canvas = self.statement, self.canvas
        holder, balance = statement.holder, statement.balance
        canvas.setFont(BOLD, 14)
        canvas.drawString(LEFT, TOP, "Statement of account")
        canvas.setFont(FONT, 9)
        holder_text = f"{holder.name} <{holder.email}>" if holder.name else holder.email
        canvas.drawString(LEFT, TOP - 18, printable(f"Holder: {holder_text}"))
        canvas.drawString(LEFT, TOP - 30, printable(f"Wallet: {balance.wallet.name}    Balance: {balance.pk}"))
        canvas.drawString(LEFT, TOP - 42, printable(f"Currency: {balance.currency_id} ({balance.currency.name})"))
        canvas.drawString(
            LEFT,
            TOP - 54,
            f"Period: from {instant_label(statement.start)} (inclusive) to {instant_label(statement.end)} (exclusive)",
        )
        canvas.line(LEFT, TOP - 60, RIGHT, TOP - 60)
        canvas.setFont(BOLD, SIZE)
        titles = TOP - 71
        canvas.drawString(DATE_X, titles, "Date (UTC)")
        canvas.drawRightString(SEQUENCE_RIGHT, titles, "No.")
        canvas.drawString(TYPE_X, titles, "Type")
        canvas.drawString(DETAILS_X, titles, "Details")
        canvas.drawRightString(DEBIT_RIGHT, titles, "Debit")
        canvas.drawRightString(CREDIT_RIGHT, titles, "Credit")
        canvas.drawRightString(BALANCE_RIGHT, titles, "Balance")
        canvas.line(LEFT, titles - 4, RIGHT, titles - 4)

    def _start_page(self) -> None:
        self.page += 1
        self._header()
        self.canvas.setFont(FONT, SIZE)
        self.y = FIRST_ROW
        # The entries' cells go into one text object per page: a drawString per cell builds one each, and was
        # a third of a long statement's time.
        self.rows = self.canvas.beginText()
        self.rows.setFont(FONT, SIZE)

    def _cell(self, x: float, y: float, text: str, *, right: bool = False) -> None:
        if right:
            x -= stringWidth(text, FONT, SIZE)
        self.rows.setTextOrigin(x, y)
        self.rows.textOut(text)

    def _finish_page(self) -> None:
        canvas = self.canvas
        canvas.drawText(self.rows)
        canvas.setFont(FONT, 7)
        canvas.drawString(LEFT, 30, f"Generated {instant_label(self.statement.generated_at)}")
        canvas.drawRightString(RIGHT, 30, f"Page {self.page}")
        canvas.showPage()  # the page is written to the sink now

    def _room(self, rows: int = 1) -> Iterator[bytes]:
        """A new page when `rows` more do not fit on this one; the finished page's bytes."""
        if self.y - (rows - 1) * ROW < BOTTOM:
            self._finish_page()
            yield from self.sink.take()
            self._start_page()

    def _next_row(self) -> float:
        y, self.y = self.y, self.y - ROW
        return y

    # --- rows -----------------------------------------------------------------------------------

    def _balance_row(self, label: str, moment: datetime, amount: Decimal) -> None:
        canvas, y = self.canvas, self._next_row()
        canvas.setFont(BOLD, SIZE)
        canvas.drawString(DATE_X, y, moment.strftime("%Y-%m-%d %H:%M:%S"))
        canvas.drawString(TYPE_X, y, label)
        canvas.drawRightString(BALANCE_RIGHT, y, self._amount(amount))
        canvas.setFont(FONT, SIZE)

    def _entry_row(self, entry: Transaction) -> None:
        y = self._next_row()
        self._cell(DATE_X, y, entry.created_at.strftime("%Y-%m-%d %H:%M:%S"))
        self._cell(SEQUENCE_RIGHT, y, str(entry.sequence), right=True)
        self._cell(TYPE_X, y, entry.type)
        details = " - ".join(part for part in (entry.merchant, entry.description) if part)
        if details:
            self._cell(DETAILS_X, y, _fitted(printable(details), DETAILS_WIDTH))
        column = CREDIT_RIGHT if entry.type in CREDIT_TYPES else DEBIT_RIGHT
        self._cell(column, y, self._amount(entry.amount), right=True)
        self._cell(BALANCE_RIGHT, y, self._amount(entry.balance_after), right=True)

    def _totals(self, totals: Totals) -> None:
        canvas, rows = self.canvas, totals.in_type_order()
        self.y -= ROW / 2
        canvas.setFont(BOLD, SIZE)
        y = self._next_row()
        canvas.drawString(DATE_X, y, "Totals by type")
        canvas.drawRightString(SEQUENCE_RIGHT, y, "Entries")
        canvas.drawRightString(DEBIT_RIGHT, y, "Debits")
        canvas.drawRightString(CREDIT_RIGHT, y, "Credits")
        canvas.setFont(FONT, SIZE)
        for kind, total in rows:
            y = self._next_row()
            canvas.drawString(DATE_X, y, kind)
            canvas.drawRightString(SEQUENCE_RIGHT, y, str(total.count))
            canvas.drawRightString(CREDIT_RIGHT if total.is_credit else DEBIT_RIGHT, y, self._amount(total.amount))
        canvas.setFont(BOLD, SIZE)
        y = self._next_row()
        canvas.drawString(DATE_X, y, "All entries")
        canvas.drawRightString(SEQUENCE_RIGHT, y, str(sum(total.count for _, total in rows)))
        canvas.drawRightString(DEBIT_RIGHT, y, self._amount(totals.debits))
        canvas.drawRightString(CREDIT_RIGHT, y, self._amount(totals.credits))
        canvas.setFont(FONT, SIZE)
        self.y -= ROW / 2
        statement, currency = self.statement, self.statement.balance.currency_id
        canvas.drawString(
            DATE_X,
            self._next_row(),
            f"Opening balance {self._amount(statement.opening.amount)} + credits {self._amount(totals.credits)} "
            f"- debits {self._amount(totals.debits)} = closing balance {self._amount(statement.closing.amount)} "
            f"{currency}",
        )

    # --- the writer's three steps ---------------------------------------------------------------

    def opening(self) -> Iterator[bytes]:
        self._start_page()
        self._balance_row("Opening balance", self.statement.start, self.statement.opening.amount)
        yield from self.sink.take()  # the file's header

    def entries(self, entries: list[Transaction]) -> Iterator[bytes]:
        for entry in entries:
            yield from self._room()
            self._entry_row(entry)

    def closing(self, totals: Totals) -> Iterator[bytes]:
        # The closing balance, the totals and their sum on one page: a reader checks them together.
        yield from self._room(len(totals.by_type) + 7)
        self._balance_row("Closing balance", self.statement.end, self.statement.closing.amount)
        self._totals(totals)
        self._finish_page()
        self.canvas.save()
        yield from self.sink.take()
