"""Tests for luabridge._trim: texts and run reports trimmed to a budget, cut where a reader can bear it."""

from __future__ import annotations

import json
import random
import re
import unicodedata

import pytest

from luabridge import RunResult
from luabridge._errors import UsageError
from luabridge._result import RunError
from luabridge._trim import (
    DEFAULT_REPORT_CHARS,
    PRINT_LESS,
    RETURN_LESS,
    report_budget,
    trim_report,
    trim_text,
)

MARKER = re.compile(r"\[\.\.\. ([\d,]+) characters(?: \(([\d,]+) lines?\))? left out; (.*) \.\.\.\]")
FLOOD = "".join(f"conversation {i} is waiting on the customer\n" for i in range(3000))


def split(trimmed: str) -> tuple[str, re.Match, str]:
    """The kept head, the marker and the kept tail of a trimmed text (the breaks around the marker dropped)."""
    [marker] = list(MARKER.finditer(trimmed))
    head, tail = trimmed[: marker.start()], trimmed[marker.end():]
    return head, marker, tail.removeprefix("\n")


def number(text: str | None) -> int:
    return int(text.replace(",", "")) if text else 0


def check_pieces(text: str, trimmed: str, *, budget: int) -> tuple[str, str]:
    """Assert that ``trimmed`` is ``text``'s head and tail with a marker counting exactly what is missing."""
    assert len(trimmed) <= budget
    head, marker, tail = split(trimmed)
    if not text.startswith(head):
        head = head.removesuffix("\n")  # a break added before the marker after a cut inside a line
    assert text.startswith(head) and text.endswith(tail)
    left_out = text[len(head): len(text) - len(tail)]
    assert number(marker[1]) == len(left_out)
    assert number(marker[2]) == left_out.count("\n")
    return head, tail


def test_a_text_within_its_budget_is_left_as_it_is():
    assert trim_text(FLOOD, len(FLOOD), advice="x") == FLOOD
    assert trim_text("", 10, advice="x") == ""


def test_a_flood_of_lines_keeps_whole_lines_at_both_ends_and_says_what_it_left_out():
    trimmed = trim_text(FLOOD, 2_000, advice=PRINT_LESS)
    head, tail = check_pieces(FLOOD, trimmed, budget=2_000)
    lines = FLOOD.splitlines()
    assert head.startswith("conversation 0 is") and tail.endswith("conversation 2999 is waiting on the customer\n")
    assert head.endswith("\n") and head.splitlines() == lines[: len(head.splitlines())]  # whole lines only
    assert tail.splitlines() == lines[-len(tail.splitlines()):]
    assert len(trimmed) > 1_800  # the budget is used, not wasted on early cuts
    assert f"lines) left out; {PRINT_LESS} ...]" in trimmed


def test_one_long_line_is_cut_between_words():
    words = " ".join(f"word{i}" for i in range(20_000))
    trimmed = trim_text(words, 1_500, advice="a")
    head, tail = check_pieces(words, trimmed, budget=1_500)
    whole = set(words.split())
    assert set(head.split()) <= whole and set(tail.split()) <= whole
    assert head.endswith(" ") and words[len(words) - len(tail) - 1] == " "


def test_compact_json_is_cut_after_a_comma():
    text = json.dumps(list(range(50_000)), separators=(",", ":"))
    head, tail = check_pieces(text, trim_text(text, 1_200, advice="a"), budget=1_200)
    assert head.endswith(",") and text[len(text) - len(tail) - 1] == ","


@pytest.mark.parametrize("text", [
    '"' + "\\u00e9\\n\\\\\\\"" * 20_000 + '"',  # JSON escapes and nothing to cut at between them
    "e\u0301" * 20_000,  # a letter and its combining accent
    "\U0001f469\u200d\U0001f4bb\ufe0f" * 10_000,  # emoji joined into one glyph
])
def test_a_text_without_boundaries_is_not_cut_inside_an_escape_or_a_letter(text):
    for budget in range(1_000, 1_012):
        head, tail = check_pieces(text, trim_text(text, budget, advice="a"), budget=budget)
        for piece in (head, tail):
            if piece.startswith('"'):
                assert re.fullmatch(r'"(?:\\u00e9\\n\\\\\\")*(?:\\u00e9(?:\\n(?:\\\\)?)?)?', piece), piece[-12:]
            elif piece.endswith('"'):
                assert re.fullmatch(r'(?:(?:(?:\\n)?\\\\)?\\")?(?:\\u00e9\\n\\\\\\")*"', piece), piece[:12]
        assert not unicodedata.combining(tail[0]) and not unicodedata.combining(text[len(head)])
        assert tail[0] not in "\u200d\ufe0f" and text[len(head)] not in "\u200d\ufe0f"


def test_without_the_tail_only_the_head_is_kept():
    trimmed = trim_text(FLOOD, 1_000, advice=RETURN_LESS, tail=False)
    head, marker, tail = split(trimmed)
    assert tail == "" and trimmed.endswith(f"{RETURN_LESS} ...]") and FLOOD.startswith(head)
    assert number(marker[1]) == len(FLOOD) - len(head)


def test_any_text_fits_its_budget_and_keeps_true_pieces():
    rng = random.Random(12)
    alphabet = ["a", "b", " ", "\n", ",", "\\", "u", "0", "é", "\u0301", "\U0001f600", "\u200d"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1_000, 6_000)))
        budget = rng.randrange(600, 1_200)
        if len(text) > budget:
            check_pieces(text, trim_text(text, budget, advice="print less", tail=rng.random() < 0.7), budget=budget)


# Reports ---------------------------------------------------------------------------------------------------

VALUE = [f"conversation-{i} waiting on customer" for i in range(5_000)]


def test_a_report_within_budget_is_the_full_report():
    result = RunResult(value={"count": 3}, output="hi\n", duration_ms=4)
    assert trim_report(result, 1_000) == result.report()
    big = RunResult(output=FLOOD, value=VALUE)
    assert trim_report(big, None) == big.report()


def test_a_report_trims_its_output_and_value_and_keeps_the_other_lines():
    result = RunResult(output=FLOOD, value=VALUE, error=RunError("runtime", "script:9: boom"), duration_ms=7.4)
    text = trim_report(result, 20_000)
    assert len(text) <= 20_000
    output, rest = text.removeprefix("Output:\n").split("\nError: script:9: boom\nReturn value: ")
    value, end = rest.split("\nExecution time: 7ms")
    assert end == ""
    check_pieces(FLOOD.rstrip("\n"), output, budget=10_000)
    full = json.dumps(VALUE, ensure_ascii=False)
    head, marker, tail = split(value)
    head = head.removesuffix("\n")  # the marker's own line
    assert tail == "" and full.startswith(head) and head.endswith(", ")
    assert marker[3] == f"the return value is {len(full):,} characters of JSON; {RETURN_LESS}"
    assert number(marker[1]) == len(full) - len(head)
    assert len(output) > 9_000 and len(value) > 9_000  # shared fairly


def test_a_small_part_is_kept_whole_beside_a_large_one():
    result = RunResult(output="counting...\ndone\n", value=VALUE)
    text = trim_report(result, 5_000)
    assert text.startswith("Output:\ncounting...\ndone\nReturn value: [") and len(text) <= 5_000
    assert len(text) > 4_800


def test_a_report_of_a_value_alone_keeps_its_head():
    text = trim_report(RunResult(value=VALUE, duration_ms=3), 2_000)
    head, marker, tail = split(text.removesuffix("\nExecution time: 3ms"))
    assert head.startswith('Return value: ["conversation-0 waiting') and len(text) > 1_800 and tail == ""
    assert marker[3].startswith("the return value is ")


def test_a_report_whose_other_lines_overflow_is_trimmed_as_one_text():
    result = RunResult(output="x\n", error=RunError("runtime", "boom " * 2_000))
    text = trim_report(result, 1_000)
    assert len(text) <= 1_000 and text.startswith("Output:\nx\nError: boom boom")
    assert text.endswith("boom \nExecution time: 0ms")


def test_a_budget_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 1000 characters, not 999"):
        trim_report(RunResult(), 999)


@pytest.mark.parametrize(("environ", "budget"), [
    ({}, DEFAULT_REPORT_CHARS),
    ({"LUABRIDGE_REPORT_CHARS": ""}, DEFAULT_REPORT_CHARS),
    ({"LUABRIDGE_REPORT_CHARS": "0"}, None),
    ({"LUABRIDGE_REPORT_CHARS": " 50000 "}, 50_000),
    ({"LUABRIDGE_REPORT_CHARS": "1000"}, 1_000),
])
def test_the_budget_comes_from_the_environment(environ, budget):
    assert report_budget(environ) == budget


@pytest.mark.parametrize("value", ["999", "-5", "20k", "1e5"])
def test_a_bad_budget_setting_is_a_usage_error(value):
    with pytest.raises(UsageError, match=f"^LUABRIDGE_REPORT_CHARS='{value}': give the characters of a report a "
                                         "reader is shown, at least 1,000 .default 20,000., or 0 to show everything$"):
        report_budget({"LUABRIDGE_REPORT_CHARS": value})
