"""The one "did you mean" of luabridge: close matches for a name a script, a config file or a host got wrong.

Matching is case-insensitive and answers in the candidates' own spelling. A suggestion is something an
agent will retry with, so it must never turn a request into its opposite: a candidate that the word holds
behind a negating prefix (``"unresolved"``, ``"not_resolved"`` -> ``"resolved"``), or that is the word behind
one (``"active"`` -> ``"inactive"``), is never suggested, however close it looks.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Callable, Iterable

MAX_MATCHED_WORD = 200  # fuzzy matching costs the product of the lengths: no name is nearly this long
CUTOFF = 0.6  # difflib's similarity ratio below which a candidate is not a likely typo

NEGATING_PREFIXES = ("un", "non", "in", "not", "dis")
_JOINERS = ("", "-", "_", " ")  # "nonblocking", "non-blocking", "not_resolved", "not resolved"


def _quoted(name: str) -> str:
    return f"'{name}'"


def did_you_mean(
    word: str,
    candidates: Iterable[str],
    *,
    limit: int = 1,
    phrase: str = " Did you mean {}?",
    spell: Callable[[str], str] = _quoted,
) -> str:
    """``phrase`` filled with the ``limit`` candidates closest to ``word``, best first; ``""`` when none is close.

    Each match is written with ``spell`` (quoted by default) and several are joined with ``", "``: the
    defaults give `` Did you mean 'page'?``. Candidates of the opposite meaning are left out (see the module
    docstring), and so is everything for a word longer than :data:`MAX_MATCHED_WORD`.
    """
    matches = [candidate for _, candidate in ranked(word, candidates, limit=limit)]
    return phrase.format(", ".join(map(spell, matches))) if matches else ""


def ranked(word: str, candidates: Iterable[str], *, limit: int = 1) -> list[tuple[float, str]]:
    """``(similarity, candidate)`` for the candidates (at most ``limit``, best first) that ``word`` is
    likely a typo of: a similarity of at least :data:`CUTOFF` (difflib's ratio, case folded), and never
    one of the opposite meaning. Callers with a structure of their own (doc pages) rank within it."""
    if len(word) > MAX_MATCHED_WORD:
        return []
    folded = word.lower()
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.lower(), candidate)
    scored = []
    matcher = difflib.SequenceMatcher()
    matcher.set_seq1(folded)  # the ratio depends on the order: the word first tells close names apart best
    for key, candidate in by_folded.items():
        if opposite(folded, key):
            continue
        matcher.set_seq2(key)
        if matcher.real_quick_ratio() >= CUTOFF and matcher.quick_ratio() >= CUTOFF and matcher.ratio() >= CUTOFF:
            scored.append((matcher.ratio(), candidate))
    return heapq.nlargest(limit, scored)  # as difflib.get_close_matches ranks, ties included


def opposite(word: str, candidate: str) -> bool:
    """Whether ``candidate`` negates ``word`` or is negated by it, by one of :data:`NEGATING_PREFIXES`.

    True when ``word`` contains the candidate behind a prefix (``"still_unresolved"``, ``"resolved"``) or
    the candidate is the word behind one (``"active"``, ``"in-active"``). Both are compared as given: fold
    the case first.
    """
    for prefix in NEGATING_PREFIXES:
        for joiner in _JOINERS:
            if f"{prefix}{joiner}{candidate}" in word or candidate == f"{prefix}{joiner}{word}":
                return True
    return False
