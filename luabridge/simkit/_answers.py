"""What a simulator's routes receive and give back: requests, answers, errors and pages of lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as a simulator received it.

    ``path`` is as sent (percent-encoding kept, no query); ``query`` keeps the last value of each name;
    ``headers`` has ``Authorization`` replaced by ``"REDACTED"``; ``body`` is the parsed JSON, the raw text
    when it is not JSON, or ``None`` when empty; ``authorized`` tells whether the credentials matched.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    authorized: bool

    @property
    def segments(self) -> list[str]:
        """The path's segments, percent-decoded: ``/v2/items/a%2Fb`` is ``["v2", "items", "a/b"]``."""
        return [unquote(segment) for segment in self.path.split("/")[1:]]


@dataclass(frozen=True)
class Answer:
    """A route's answer: an HTTP status, a JSON-able ``payload`` and any extra headers."""

    status: int
    payload: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class ServiceError(Exception):
    """An error answer a route raises: the HTTP ``status``, the service's error ``code`` and a ``message``.

    ``code`` defaults to the status's name (``NOT_FOUND`` for 404); the server words the body with its
    :meth:`~luabridge.simkit.SimServer.error_body`.
    """

    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code if code is not None else HTTPStatus(status).name


def query_int(query: Mapping[str, str], name: str, *, default: int, maximum: int | None = None,
              code: str | None = None) -> int:
    """Read a positive integer query parameter, ``default`` when absent.

    Raises :class:`ServiceError` (400, with ``code``) when it is not an integer from 1 to ``maximum``.
    """
    text = query.get(name)
    if text is None:
        return default
    bounds = f"from 1 to {maximum}" if maximum else "of at least 1"
    if not text.isdigit() or int(text) < 1 or (maximum is not None and int(text) > maximum):
        raise ServiceError(400, f"{name} must be an integer {bounds}, got {text!r}", code=code)
    return int(text)


@dataclass(frozen=True)
class Page:
    """Page ``number`` (from 1) of a list cut into pages of ``per_page``: its ``items`` and its neighbours.

    A page past the end is empty; its ``previous`` is then the last page, so a client can walk back.
    """

    items: list[Any]
    number: int
    per_page: int
    total_items: int

    @classmethod
    def of(cls, items: Sequence[Any], number: int, per_page: int) -> Page:
        """Cut page ``number`` out of ``items``."""
        return cls(list(items[(number - 1) * per_page: number * per_page]), number, per_page, len(items))

    @property
    def total_pages(self) -> int:
        """How many pages the list has: 0 when it is empty."""
        return -(-self.total_items // self.per_page)

    @property
    def last(self) -> int:
        """The number of the last page, 1 for an empty list."""
        return max(self.total_pages, 1)

    @property
    def previous(self) -> int | None:
        """The page before this one, ``None`` on the first."""
        return min(self.number - 1, self.last) if self.number > 1 else None

    @property
    def next(self) -> int | None:
        """The page after this one, ``None`` on the last (or past it)."""
        return self.number + 1 if self.number < self.total_pages else None
