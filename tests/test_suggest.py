"""Tests for luabridge._suggest: close matches, their wording, and never a suggestion of the opposite meaning."""

from __future__ import annotations

import time

import pytest

from luabridge._suggest import MAX_MATCHED_WORD, did_you_mean

STATUSES = ["new", "open", "pending", "resolved", "closed"]


@pytest.mark.parametrize(("word", "candidates", "expected"), [
    ("opne", STATUSES, " Did you mean 'open'?"),
    ("OPEN", STATUSES, " Did you mean 'open'?"),  # case-insensitive, answered in the candidate's spelling
    ("perpage", ["page", "per_page"], " Did you mean 'per_page'?"),
    ("zzz", STATUSES, ""),
    ("", STATUSES, ""),
    ("open", [], ""),
    ("Open", ["OPEN", "open"], " Did you mean 'OPEN'?"),  # spellings equal but for case: the first one
])
def test_the_closest_candidate_quoted(word, candidates, expected):
    assert did_you_mean(word, candidates) == expected


def test_limit_phrase_and_spelling_word_the_matches():
    names = ["list_conversations", "list_groups", "list_agents", "get_agent"]
    assert (did_you_mean("list_convos", names, limit=3, phrase=" Did you mean: {}?", spell=str)
            == " Did you mean: list_conversations, list_groups, list_agents?")
    assert did_you_mean("tokn", ["token", "url"], phrase=" did you mean {}?") == " did you mean 'token'?"
    assert did_you_mean("opne", STATUSES, spell=lambda s: f'"{s}"') == ' Did you mean "open"?'


@pytest.mark.parametrize(("word", "candidates"), [
    # the word holds the candidate behind a negating prefix
    ("unresolved", STATUSES),
    ("Unresolved", STATUSES),
    ("un-resolved", STATUSES),
    ("not_resolved", STATUSES),
    ("not resolved", STATUSES),
    ("nonresolved", STATUSES),
    ("still_unresolved", STATUSES),
    ("inactive", ["active"]),
    ("disconnected", ["connected"]),
    ("unassigned", ["assigned"]),
    ("unarchived", ["archived"]),
    # the candidate is the word behind a negating prefix
    ("active", ["inactive"]),
    ("assigned", ["unassigned"]),
    ("blocking", ["non-blocking"]),
    ("resolved", ["not_resolved"]),
])
def test_never_a_candidate_of_the_opposite_meaning(word, candidates):
    assert did_you_mean(word, candidates) == ""


def test_an_opposite_is_skipped_for_the_next_best_candidate():
    assert did_you_mean("unresolvd", ["resolved", "unresolved"]) == " Did you mean 'unresolved'?"
    assert did_you_mean("unresolved", ["resolved", "unresolvd"]) == " Did you mean 'unresolvd'?"
    assert did_you_mean("reslved", ["resolved", "unresolved"]) == " Did you mean 'resolved'?"


def test_a_huge_word_gets_no_suggestion_and_answers_quickly():
    started = time.perf_counter()
    assert did_you_mean("a" * 1_000_000, ["a" * 150, "b"]) == ""
    assert did_you_mean("a" * (MAX_MATCHED_WORD + 1), ["a" * MAX_MATCHED_WORD]) == ""
    assert did_you_mean("a" * MAX_MATCHED_WORD, ["a" * (MAX_MATCHED_WORD - 1)]) != ""
    assert time.perf_counter() - started < 1
