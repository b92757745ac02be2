"""Values a script passes that end up inside a URL path: one safe segment each, or a clear refusal."""

from __future__ import annotations

import json
import re
import unicodedata
from urllib.parse import quote

from .._errors import ArgumentError

MAX_SEGMENT_LENGTH = 256
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_SHOWN = 40  # characters of a refused value quoted back


def path_segment(value: str, what: str, *, max_length: int = MAX_SEGMENT_LENGTH) -> str:
    """Return ``value`` percent-encoded as one path segment.

    ``what`` names the value in the message (``"parameter 'id'"``). Raises :class:`ArgumentError`, before
    anything is sent, when ``value`` is empty or longer than ``max_length``, or holds ``/``, ``\\``, ``?``,
    ``#``, ``..`` (or is ``.``), a control character or a percent-escape.
    """
    problem = segment_problem(value, max_length=max_length)
    if problem is not None:
        raise ArgumentError(f"{what} {problem}")
    return quote(value, safe="")


def segment_problem(value: str, *, max_length: int = MAX_SEGMENT_LENGTH) -> str | None:
    """Why ``value`` cannot be one path segment (``"must not be empty"``), or ``None`` when it can."""
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"must be at most {max_length} characters long (got {len(value)})"
    # json.dumps escapes every control character, so the refused value prints safely.
    shown = json.dumps(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")
    for separator in ("/", "\\", "?", "#"):
        if separator in value:
            return f"must not contain '{separator}': an id is a single path segment (got {shown})"
    if ".." in value or value == ".":
        return f"must not be '.' or contain '..' (got {shown})"
    if any(unicodedata.category(char) == "Cc" for char in value):
        return f"must not contain control characters (got {shown})"
    if _PERCENT_ESCAPE.search(value):
        # Servers that decode twice would turn %2F into a separator; the value is encoded for the caller.
        return f"must not contain percent-escapes such as %2F; pass the id itself (got {shown})"
    return None
