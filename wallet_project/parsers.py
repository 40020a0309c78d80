"""JSON parsing that keeps money exact and turns every malformed body into the caller's error.

Numbers become `Decimal`, never float; NaN and Infinity are refused. A body
that is not UTF-8, not JSON, names one key twice in an object (which of the
two would be the amount?), holds a string that is not Unicode (a lone
surrogate escape) or nests deeper than `MAX_JSON_DEPTH` is a
`ParseError` (400 `validation_error`); a body over Django's
`DATA_UPLOAD_MAX_MEMORY_SIZE` is Django's `RequestDataTooBig` (413 `payload_too_large`). Nothing here echoes
the body back: a message never carries a key or value the caller sent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No request of the API nests at all beyond its top-level object; this leaves room and keeps
# every later walk over the data (serializers, throttles, `repr`) far from the recursion limit.
MAX_JSON_DEPTH = 32


class _Refused(ValueError):
    """Valid JSON syntax that a request body may still not contain; the message is for the client."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a valid JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _Refused("an object names the same key twice")
    return document


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refusal(document: Any, *, depth_limit: int | None, strings: bool) -> str | None:
    """Why a parsed document may not be a request body (too deep, or a string that is not Unicode), if so.

    Walked without recursion. A `\\ud800` escape parses into a lone surrogate, which
    is no character at all: every later `encode()` of it (a log line, a cache key, the
    database) would fail, so it is refused here, once, for every field.
    """
    pending = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            if strings and not _is_unicode(node):
                return "a string holds a lone surrogate escape, which is not a character."
            continue
        if isinstance(node, dict):
            children: Any = [*node, *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth_limit is not None and depth > depth_limit:
            return f"nested deeper than {depth_limit} levels."
        pending.extend((child, depth + 1) for child in children)
    return None


def _read(stream: Any) -> bytes:
    """The body, refused past the upload limit.

    DRF hands a JSON parser the body Django has already checked against the limit;
    a stream that did not go through that check is held to it here, so the limit
    holds whoever calls the parser.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if stream is None:
        return b""
    if limit is None:
        return stream.read()
    body = stream.read(limit + 1)
    if len(body) > limit:
        # Django's own exception for the same limit: the exception handler answers both with 413.
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
    return body


def parse_json(body: bytes, encoding: str) -> Any:
    """The JSON document of a request body ({} when blank); raises ParseError when it is malformed."""
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ParseError(f"Malformed JSON: the body is not valid {encoding}.") from exc
    if not text.strip():
        return {}
    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_object)
    except RecursionError as exc:
        raise ParseError(f"Malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    except (json.JSONDecodeError, _Refused) as exc:
        raise ParseError(f"Malformed JSON: {exc}") from exc
    except ValueError as exc:  # an integer past int()'s limit of 4,300 digits
        raise ParseError("Malformed JSON: a number has too many digits.") from exc
    # Cheap scans of the text bound what the tree can hold: only a body with many brackets or with
    # \u escapes is walked.
    deep = text.count("[") + text.count("{") > MAX_JSON_DEPTH
    escapes = "\\u" in text
    if deep or escapes:
        refusal = _refusal(document, depth_limit=MAX_JSON_DEPTH if deep else None, strings=escapes)
        if refusal is not None:
            raise ParseError(f"Malformed JSON: {refusal}")
    return document


class DecimalJSONParser(JSONParser):
    """JSONParser that reads JSON numbers as `Decimal` and refuses malformed bodies (see the module docstring)."""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        parser_context = parser_context or {}
        return parse_json(_read(stream), parser_context.get("encoding", settings.DEFAULT_CHARSET))
