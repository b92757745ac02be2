"""Size what a model reads: a run's text report trimmed to a budget of characters.

The hard limits (64 KiB of output, 1 MiB of returned JSON) say what a run may produce; the budget says
how much of it a reader is shown. A model's context is the scarce thing: a print flood or a returned list
of every record costs it tens of thousands of tokens, so the text report of ``luabridge run`` and the
answer of MCP ``execute_lua`` keep a part's head and tail (a returned value: its head), cut at a line or
word boundary, with a marker in between that says how many characters and lines were left out and what to
do instead. The JSON result (``luabridge run --json``) and the Python API (:class:`RunResult`) keep
everything.

The budget is :data:`DEFAULT_REPORT_CHARS` characters for both doors (a person at a terminal who wants
it all has ``--json``); ``$LUABRIDGE_REPORT_CHARS`` sets another, ``0`` turns trimming off.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Mapping

from ._errors import UsageError
from ._result import RunResult

DEFAULT_REPORT_CHARS = 20_000
MIN_REPORT_CHARS = 1_000  # below this a marker and its advice would be most of what is left
REPORT_CHARS_VARIABLE = "LUABRIDGE_REPORT_CHARS"

PRINT_LESS = "print less: a count or a summary, not every record"
RETURN_LESS = "return a summary instead: counts, ids, the few fields needed"
_MIN_PART = 300  # a part is given at least this much room, else the whole report is trimmed as one text
_BOUNDARY = re.compile(r"[\s,;]")  # a word ends at white space, or after a comma (compact JSON has no spaces)


def report_budget(environ: Mapping[str, str] = os.environ) -> int | None:
    """The report budget that ``$LUABRIDGE_REPORT_CHARS`` sets: ``None`` (no trimming) for ``0``.

    Raises :class:`UsageError` when the variable is neither ``0`` nor a whole number of at least
    :data:`MIN_REPORT_CHARS`.
    """
    text = environ.get(REPORT_CHARS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_REPORT_CHARS
    if text.isdigit() and (int(text) == 0 or int(text) >= MIN_REPORT_CHARS):
        return int(text) or None
    raise UsageError(
        f"{REPORT_CHARS_VARIABLE}={text[:40]!r}: give the characters of a report a reader is shown, at least "
        f"{MIN_REPORT_CHARS:,} (default {DEFAULT_REPORT_CHARS:,}), or 0 to show everything"
    )


def trim_report(result: RunResult, budget: int | None) -> str:
    """``result.report()`` in at most ``budget`` characters (``None``: all of it).

    The printed output keeps its head and tail, the returned value its head; each says what was left out
    and what to do instead. The other lines (error, time, calls) are kept whole unless they alone overflow
    the budget. Raises :class:`ValueError` for a budget under :data:`MIN_REPORT_CHARS`.
    """
    if budget is not None and budget < MIN_REPORT_CHARS:
        raise ValueError(f"a report budget is at least {MIN_REPORT_CHARS} characters, not {budget}")
    report = result.report()
    if budget is None or len(report) <= budget:
        return report
    # The report shows both parts verbatim: the output first, after its "Output:" line, then the value.
    parts = []  # (start, text, advice, keep the tail)
    output = result.output.rstrip("\n")
    after_output = 0
    if output and report.startswith(f"Output:\n{output}"):
        parts.append((len("Output:\n"), output, PRINT_LESS, True))
        after_output = len("Output:\n") + len(output)
    if result.value is not None:
        value = json.dumps(result.value, ensure_ascii=False)
        label = "Return value: "
        line_start = f"\n{report}".find(f"\n{label}{value}\n", after_output)  # its line, the first one too
        if line_start >= 0:
            advice = f"the return value is {len(value):,} characters of JSON; {RETURN_LESS}"
            parts.append((line_start + len(label), value, advice, False))
    room = budget - (len(report) - sum(len(text) for _, text, _, _ in parts))
    shares = _shares([len(text) for _, text, _, _ in parts], room)
    if shares is None:
        return trim_text(report, budget, advice=f"{PRINT_LESS}; {RETURN_LESS}")
    for (start, text, advice, tail), share in reversed(list(zip(parts, shares, strict=True))):
        report = report[:start] + trim_text(text, share, advice=advice, tail=tail) + report[start + len(text):]
    return report if len(report) <= budget else trim_text(report, budget, advice=f"{PRINT_LESS}; {RETURN_LESS}")


def _shares(sizes: list[int], room: int) -> list[int] | None:
    """Split ``room`` between parts of ``sizes``: a small part keeps all it has, the others share the rest.

    ``None`` when the parts cannot each have :data:`_MIN_PART` characters.
    """
    if not sizes or room < _MIN_PART * len(sizes):
        return None
    shares = [0] * len(sizes)
    left, waiting = room, sorted(range(len(sizes)), key=sizes.__getitem__)
    while waiting:
        fair = left // len(waiting)
        index = waiting.pop(0)
        shares[index] = min(sizes[index], fair)
        left -= shares[index]
    return shares


def trim_text(text: str, budget: int, *, advice: str, tail: bool = True) -> str:
    """``text`` in at most ``budget`` characters: its head (and tail), a marker line between them.

    Cuts fall at a line break where one is near, else at a word boundary, and never inside a JSON escape,
    a surrogate pair or before a combining mark. The marker says how many characters (and line breaks)
    were left out, then ``advice``. With ``tail=False`` only the head is kept. ``text`` is returned as it
    is when it fits; a budget too small for the marker yields the marker alone.
    """
    if len(text) <= budget:
        return text
    reserve = len(_marker(len(text), text.count("\n"), advice)) + 2  # the marker and the breaks around it
    room = max(budget - reserve, 0)
    head = _head(text, room // 2 if tail else room)
    rest = text[len(head):]
    kept_tail = _tail(rest, room - len(head)) if tail else ""
    left_out = rest[: len(rest) - len(kept_tail)]
    marker = _marker(len(left_out), left_out.count("\n"), advice)
    return "".join((
        head, "" if not head or head.endswith("\n") else "\n", marker, "\n" if kept_tail else "", kept_tail,
    ))


def _marker(characters: int, lines: int, advice: str) -> str:
    breaks = f" ({lines:,} line{'s' if lines > 1 else ''})" if lines else ""
    return f"[... {characters:,} characters{breaks} left out; {advice} ...]"


def _head(text: str, room: int) -> str:
    """The longest start of ``text`` within ``room`` that ends after a line break or at a word boundary."""
    piece = text[:room]
    line_end = piece.rfind("\n") + 1
    if line_end and line_end >= room // 2:
        return piece[:line_end]
    boundaries = [m.end() for m in _BOUNDARY.finditer(piece)]
    if boundaries and boundaries[-1] >= room // 2:
        return piece[: boundaries[-1]]
    return text[: _safe_end(text, len(piece))]


def _tail(text: str, room: int) -> str:
    """The longest end of ``text`` within ``room`` that starts a line or a word."""
    if room <= 0:
        return ""
    begin = len(text) - room
    if begin <= 0:
        return text
    if text[begin - 1] == "\n":
        return text[begin:]
    piece = text[begin:]
    line_start = piece.find("\n") + 1
    if line_start and line_start <= room // 2:
        return piece[line_start:]
    boundary = _BOUNDARY.search(piece)
    if boundary and boundary.end() <= room // 2:
        return piece[boundary.end():]
    return piece[_safe_start(text, begin) - begin:]


def _safe_end(text: str, end: int) -> int:
    """``end`` moved back, if need be, so that ``text[:end]`` splits no escape, pair or accented letter."""
    escape = _escape_around(text, end)
    if escape is not None:
        end = escape[0]
    while 0 < end < len(text) and (_joins(text[end]) or "\ud800" <= text[end - 1] <= "\udbff"):
        end -= 1
    return end


def _safe_start(text: str, start: int) -> int:
    """``start`` moved on, if need be, so that ``text[start:]`` starts no escape, pair or accent short."""
    escape = _escape_around(text, start)
    if escape is not None:
        start = escape[1]
    while start < len(text) and (_joins(text[start]) or "\udc00" <= text[start] <= "\udfff"):
        start += 1
    return start


def _escape_around(text: str, cut: int) -> tuple[int, int] | None:
    """The span of the JSON escape (``\\n``, ``\\uXXXX``) that a cut at ``cut`` would split, if any."""
    at = text.rfind("\\", max(cut - 5, 0), cut)  # an escape is at most 6 characters long
    if at < 0:
        return None
    run = at - len(text[:at].rstrip("\\"))  # backslashes just before it: pairs of them escape each other
    if run % 2:
        return None
    length = 6 if text.startswith("u", at + 1) else 2
    return (at, at + length) if at + length > cut else None


def _joins(char: str) -> bool:
    """Whether ``char`` belongs to the character before it (an accent, a joiner, a variation selector)."""
    return bool(unicodedata.combining(char)) or char in "\u200d\ufe0e\ufe0f"
