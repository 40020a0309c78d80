"""reportlab's canvas, with each finished page written out at once instead of kept until the end.

reportlab keeps every page of a document in memory and formats the file when
it is saved. A PDF does not need that: its objects may come in any order, as
long as the cross-reference table at the end gives each one's byte offset.
So `PageStreamingDocument` formats a page and its content stream with
reportlab's own objects as soon as the canvas finishes it (`showPage`), hands
the bytes to its sink, and keeps only their offsets and the page's name. What
is only known at the end (the page tree with its count, the fonts, the
catalogue) is formatted by reportlab at `save`, followed by the
cross-reference table and the trailer.

Memory is one page's drawing plus a few dozen bytes per page finished (an
offset, a name, a reference in the page tree). The document's objects are
reportlab's; only the order in which they reach the file is ours, so anything
reportlab draws on a page is written as it would write it. Tested by reading
the files back with pypdf and rendering them with poppler
(`transactions/tests/test_statements_pdf.py`).
"""

from __future__ import annotations

from typing import Any, BinaryIO

from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas


class PageStreamingDocument(pdfdoc.PDFDocument):
    """A reportlab document that writes each page to `sink` as soon as it is added."""

    def __init__(self, sink: BinaryIO, **options: Any) -> None:
        super().__init__(**options)
        self._sink = sink
        self._offset = 0
        self._written: set[str] = set()  # names of the objects already in the file
        self._emit(b"%PDF-" + f"{self._pdfVersion[0]}.{self._pdfVersion[1]}".encode() + b"\n%\xe2\xe3\xcf\xd3\n")

    def _emit(self, data: bytes) -> int:
        offset = self._offset
        self._sink.write(data)
        self._offset += len(data)
        return offset

    def _write_object(self, name: str) -> None:
        data = pdfdoc.PDFIndirectObject(name, self.idToObject[name]).format(self)
        self.idToOffset[name] = self._emit(data)
        self._written.add(name)
        self.idToObject[name] = None  # the object itself is no longer needed: its number and offset are kept

    def addPage(self, page: pdfdoc.PDFPage) -> None:
        name = self.thisPageName()
        if page.compression and page.stream:
            # Deflate alone: reportlab would add an ASCII85 layer (rl_config.useA85), a quarter more bytes and,
            # for a long statement, a tenth of its time, for files that are binary anyway.
            page.Contents = pdfdoc.PDFStream(content=page.stream, filters=[pdfdoc.PDFZCompress])
        super().addPage(page)
        self._write_object(name)  # formatting it registers its content stream (page.Contents)
        self._write_object(page.Contents.__InternalName__)
        self.Pages.pages[-1] = pdfdoc.PDFObjectReference(name)  # the page tree needs its name only

    def format(self) -> bytes:
        """Write every object not yet written, the cross-reference table and the trailer; the file is complete
        in the sink, so nothing is returned for reportlab to write."""
        self.encrypt.prepare(self)
        root, info = self.Reference(self.Catalog), self.Reference(self.info)
        number = 0
        # Formatting an object may register new ones (the page tree's own reference): loop until none is left.
        while number + 1 in self.numberToId:
            number += 1
            name = self.numberToId[number]
            if name not in self._written:
                self._write_object(name)
        xref = self._offset
        lines = [b"xref\n", f"0 {number + 1}\n".encode(), b"0000000000 65535 f \n"]
        lines += [b"%010d 00000 n \n" % self.idToOffset[self.numberToId[n]] for n in range(1, number + 1)]
        self._emit(b"".join(lines))
        trailer = pdfdoc.PDFTrailer(startxref=xref, Size=number + 1, Root=root, Info=info, ID=self.ID())
        self._emit(trailer.format(self))
        return b""


class StreamingCanvas(Canvas):
    """A reportlab canvas whose pages go to `sink` as each is finished (see `PageStreamingDocument`)."""

    def __init__(self, sink: BinaryIO, **options: Any) -> None:
        super().__init__(sink, **options)
        self._doc = PageStreamingDocument(
            sink,
            compression=self._pageCompression,
            invariant=self._doc.invariant,
            pdfVersion=self._doc._pdfVersion,
        )
        self._make_preamble()  # the preamble names the initial font, which the new document must register
